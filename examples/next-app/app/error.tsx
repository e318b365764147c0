'use client';

// Shown when a page cannot be rendered, most often because the session store cannot be
// reached (a SessionStoreError): whether the visitor is signed in is unknown then, so the
// page neither lets them in nor sends them to sign in again; retrying is the way on. (In
// production Next.js hides a server error's message from the browser; the server log has
// it under the digest.)
export default function ErrorPage({ reset }: { error: Error & { digest?: string }; reset: () => void }) {
  return (
    <>
      <h1 data-testid="unavailable">Temporarily unavailable</h1>
      <p>This page could not be shown right now. Please try again in a moment.</p>
      <button type="button" onClick={() => reset()}>
        Try again
      </button>
    </>
  );
}
