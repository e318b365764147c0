import Link from 'next/link';

import { signUp } from '../actions';

const messages: Record<string, string> = {
  invalid: 'Enter a name, a valid email and a password of at least 8 characters.',
  taken: 'That email is already registered.',
};

export default async function SignUpPage({ searchParams }: { searchParams: Promise<Record<string, string | undefined>> }) {
  const { error } = await searchParams;
  return (
    <>
      <h1>Sign up</h1>
      {error && messages[error] && (
        <p className="error" data-testid="signup-error">
          {messages[error]}
        </p>
      )}
      <form action={signUp} className="stack">
        <input name="name" placeholder="Name" required />
        <input name="email" type="email" placeholder="Email" autoComplete="username" required />
        <input name="password" type="password" placeholder="Password (8+ characters)" autoComplete="new-password" minLength={8} required />
        <button type="submit">Create account</button>
      </form>
      <p>
        Have an account? <Link href="/login">Log in</Link>
      </p>
    </>
  );
}
