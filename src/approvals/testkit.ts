// Shared by the approvals unit tests (not imported by production code): a real redis-server for
// the Redis store and replica tests, started once per test file and stopped when it ends.
import { after } from 'node:test';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface RedisServer { url: string; port: number; stop(): Promise<void> }

/** dist/approvals/testkit.js → the repository root */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Starts redis-server for this test file (stopped after it). `skip` is the reason to skip Redis
 * tests when redis-server is not installed, else false.
 */
export async function testRedis(): Promise<{ redis: RedisServer | null; skip: string | false }> {
  // Imported by URL so tsc leaves the .mjs alone.
  const { startRedis } = (await import(pathToFileURL(join(ROOT, 'test/support/redis.mjs')).href)) as { startRedis(): Promise<RedisServer | null> };
  const redis = await startRedis();
  after(async () => {
    await redis?.stop();
  });
  return { redis, skip: redis === null ? 'redis-server is not on PATH (scripts/install-test-deps.sh installs it)' : false };
}
