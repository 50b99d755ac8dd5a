import { MemoryStore } from "../../src/store/memory.js";
import { runStoreContract } from "./store-contract.js";

runStoreContract({
  name: "memory",
  open: async (now) => ({ store: new MemoryStore({ now }) }),
});
