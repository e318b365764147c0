// Who am I? 401 without a live session. (Used by the end-to-end test to replay cookies.)
import { sessions, storeUnavailable } from '@/lib/session';

export const dynamic = 'force-dynamic';

export async function GET() {
  try {
    const session = await sessions.getCurrentSession();
    if (!session) return Response.json({ error: 'not signed in' }, { status: 401 });
    return Response.json({ userId: session.userId, email: session.data.email, sessionId: session.id, expiresAt: session.expiresAt });
  } catch (error) {
    return storeUnavailable(error);
  }
}
