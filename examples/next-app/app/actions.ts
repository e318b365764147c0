'use server';

import { safeRedirectPath } from '@staykv/session/next';
import { headers } from 'next/headers';
import { redirect } from 'next/navigation';

import { sessions, store } from '@/lib/session';
import { authenticate, createUser, type User } from '@/lib/users';

async function startSession(user: User) {
  const userAgent = (await headers()).get('user-agent')?.slice(0, 200) ?? 'unknown';
  // New token on every sign-in; the previous session of this browser (if any) is destroyed.
  await sessions.signIn(user.id, { email: user.email, name: user.name, userAgent });
}

export async function signUp(formData: FormData) {
  const email = String(formData.get('email') ?? '');
  const name = String(formData.get('name') ?? '');
  const password = String(formData.get('password') ?? '');
  if (!/^[^@\s]+@[^@\s]+$/.test(email) || name.trim() === '' || password.length < 8) {
    redirect('/signup?error=invalid');
  }
  const user = await createUser(email, name, password);
  if (!user) redirect('/signup?error=taken');
  await startSession(user);
  redirect('/dashboard');
}

export async function logIn(formData: FormData) {
  const user = await authenticate(String(formData.get('email') ?? ''), String(formData.get('password') ?? ''));
  const next = safeRedirectPath(formData.get('next'), '/dashboard');
  if (!user) redirect(`/login?error=invalid&next=${encodeURIComponent(next)}`);
  await startSession(user);
  redirect(next);
}

export async function logOut() {
  await sessions.signOut();
  redirect('/login');
}

/** Every session of this user, this one included. */
export async function logOutEverywhere() {
  const session = await sessions.getCurrentSession();
  if (session) await store.destroyUserSessions(session.userId);
  await sessions.clearSessionCookie();
  redirect('/login');
}

export async function logOutOtherDevices() {
  const session = await sessions.getCurrentSession();
  if (!session) redirect('/login');
  await store.destroyUserSessions(session.userId, { except: session.id });
  redirect('/dashboard');
}
