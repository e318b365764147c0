import { safeRedirectPath } from '@staykv/session/next';
import Link from 'next/link';

import { logIn } from '../actions';

export default async function LoginPage({ searchParams }: { searchParams: Promise<Record<string, string | undefined>> }) {
  const { error, next } = await searchParams;
  return (
    <>
      <h1>Log in</h1>
      {error === 'invalid' && (
        <p className="error" data-testid="login-error">
          Wrong email or password.
        </p>
      )}
      <form action={logIn} className="stack">
        <input type="hidden" name="next" value={safeRedirectPath(next, '/dashboard')} />
        <input name="email" type="email" placeholder="Email" autoComplete="username" required />
        <input name="password" type="password" placeholder="Password" autoComplete="current-password" required />
        <button type="submit">Log in</button>
      </form>
      <p>
        No account? <Link href="/signup">Sign up</Link>
      </p>
    </>
  );
}
