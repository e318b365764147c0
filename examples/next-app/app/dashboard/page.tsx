import { redirect } from 'next/navigation';

import { sessions, store } from '@/lib/session';

import { logOut, logOutEverywhere, logOutOtherDevices } from '../actions';

export const dynamic = 'force-dynamic';

const fmt = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';

export default async function Dashboard() {
  // The middleware already redirected requests without a live session; this check is the
  // authoritative one (middleware is an optimisation, not a security boundary).
  const session = await sessions.getCurrentSession();
  if (!session) redirect('/login');
  const list = await store.listUserSessions(session.userId);

  return (
    <>
      <h1>Dashboard</h1>
      <p data-testid="welcome">
        Signed in as <strong>{session.data.name}</strong> ({session.data.email})
      </p>
      <p>
        This session expires at {fmt(session.expiresAt)} unless you keep using it; at the latest at {fmt(session.absoluteExpiresAt)}.
      </p>

      <h2>Your active sessions ({list.length})</h2>
      <table data-testid="sessions">
        <thead>
          <tr>
            <th>Device</th>
            <th>Signed in</th>
            <th>Expires</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {list.map((s) => (
            <tr key={s.id} data-testid="session-row" data-session-id={s.id} data-current={s.id === session.id ? 'yes' : 'no'}>
              <td>
                {s.data.userAgent} {s.id === session.id && <span className="tag">this device</span>}
              </td>
              <td>{fmt(s.createdAt)}</td>
              <td>{fmt(s.expiresAt)}</td>
              <td>
                {/* A plain form POST to a route handler, protected by verifyOrigin. */}
                <form method="post" action="/api/sessions/revoke">
                  <input type="hidden" name="id" value={s.id} />
                  <button type="submit" data-testid="revoke">
                    Log out this device
                  </button>
                </form>
              </td>
            </tr>
          ))}
        </tbody>
      </table>

      <div className="row">
        <form action={logOut}>
          <button type="submit" data-testid="logout">
            Log out
          </button>
        </form>
        <form action={logOutOtherDevices}>
          <button type="submit" data-testid="logout-others">
            Log out other devices
          </button>
        </form>
        <form action={logOutEverywhere}>
          <button type="submit" data-testid="logout-everywhere">
            Log out everywhere
          </button>
        </form>
      </div>
    </>
  );
}
