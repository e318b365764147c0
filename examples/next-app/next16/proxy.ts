// Next.js 16: `middleware.ts` became `proxy.ts` and runs on Node. Same guard as Next 15.
import type { NextRequest } from 'next/server';

import { guard } from './lib/guard';

export function proxy(request: NextRequest) {
  return guard(request);
}

export const config = { matcher: ['/dashboard/:path*'] };
