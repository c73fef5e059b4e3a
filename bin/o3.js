#!/usr/bin/env -S node --max-semi-space-size=16
// The `o3` command: runs the compiled CLI (npm install builds dist/).
// The flags after `node` are cli/v8-flags.ts SERVER_V8_FLAGS (kept equal by test/cli/v8-flags.test.ts).
import('../dist/cli/main.js').catch((err) => {
  console.error(`o3: ${err?.code === 'ERR_MODULE_NOT_FOUND' ? 'not built yet: run npm install (or npm run build)' : err?.message ?? err}`)
  process.exit(1)
})
