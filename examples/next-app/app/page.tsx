import Link from 'next/link';
import { redirect } from 'next/navigation';

import { sessions } from '@/lib/session';

export default async function Home() {
  if (await sessions.getCurrentSession()) redirect('/dashboard');
  return (
    <>
      <h1>StayKV sessions example</h1>
      <p>
        <Link href="/login">Log in</Link> or <Link href="/signup">sign up</Link>.
      </p>
    </>
  );
}
