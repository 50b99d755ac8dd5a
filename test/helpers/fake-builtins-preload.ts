/**
 * `node --import tsx --import ./test/helpers/fake-builtins-preload.ts bin/tollgate.js …`:
 * lets CLI tests run against projects that use built-ins not registered in this build.
 */
import { ensureFakeBuiltins } from "./fake-builtins.js";

ensureFakeBuiltins();
