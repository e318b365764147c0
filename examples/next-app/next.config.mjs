/** @type {import('next').NextConfig} */
const nextConfig = {
  poweredByHeader: false,
  reactStrictMode: true,
  // ioredis opens TCP sockets: keep it a plain Node dependency, not bundled.
  serverExternalPackages: ['ioredis'],
};

export default nextConfig;
