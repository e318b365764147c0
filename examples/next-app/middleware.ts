// Next.js 15: middleware runs in the edge runtime. (The Next.js 16 build of this app uses
// next16/proxy.ts instead — same guard, Node runtime.)
import type { NextRequest } from 'next/server';

import { guard } from './lib/guard';

export function middleware(request: NextRequest) {
  return guard(request);
}

export const config = { matcher: ['/dashboard/:path*'] };
