// What a project module gets for `import … from "@zuplo/runtime"` (see ../runtime-init.ts). The
// runtime's types (RuntimeExtensions, ZuploRequest, ZuploContext, …) are erased when TypeScript
// is compiled; values a module may use at run time live here.
"use strict";

module.exports = {};
