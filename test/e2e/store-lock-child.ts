/**
 * A separate process for the cross-process lock tests: opens the store named by argv[2], takes
 * the lock argv[3] with lease argv[4] ms, prints "locked" and holds it until killed.
 */
import { createStore } from "../../src/store/index.js";

const [spec, name, lease] = process.argv.slice(2);
const store = await createStore(spec!, {});
await store.withLock(
  name!,
  async () => {
    process.stdout.write("locked\n");
    await new Promise(() => setInterval(() => undefined, 60_000));
  },
  { leaseMs: Number(lease ?? 30_000), waitMs: 10_000 },
);
