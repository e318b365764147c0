// Minimal declarations of the two framework modules `@staykv/session/next` imports, so the
// package builds without installing Next.js and React. The emitted .d.ts files never
// reference these modules; the application's own `next` and `react` are used at run time.
declare module 'next/headers' {
  interface RequestCookie {
    name: string;
    value: string;
  }
  interface CookieStore {
    get(name: string): RequestCookie | undefined;
    set(name: string, value: string, options?: Record<string, unknown>): unknown;
  }
  export function cookies(): Promise<CookieStore>;
}

declare module 'react' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  export function cache<F extends (...args: any[]) => any>(fn: F): F;
}
