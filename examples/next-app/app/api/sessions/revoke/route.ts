// "Log out this device": revoke one of the current user's sessions by its public id.
// Route handlers get no built-in CSRF protection from Next.js, hence verifyOrigin.
import { verifyOrigin } from '@staykv/session/next';

import { sessions, store, storeUnavailable } from '@/lib/session';

export async function POST(request: Request) {
  if (!verifyOrigin(request)) {
    return Response.json({ error: 'cross-origin request refused' }, { status: 403 });
  }
  try {
    const session = await sessions.getCurrentSession();
    if (!session) return Response.json({ error: 'not signed in' }, { status: 401 });

    const form = await request.formData();
    const id = String(form.get('id') ?? '');
    const revoked = await store.destroySessionById(session.userId, id);
    if (id === session.id) {
      await sessions.clearSessionCookie();
      return new Response(null, { status: 303, headers: { location: '/login' } });
    }
    if (request.headers.get('accept')?.includes('application/json')) return Response.json({ revoked });
    return new Response(null, { status: 303, headers: { location: '/dashboard' } });
  } catch (error) {
    return storeUnavailable(error);
  }
}
