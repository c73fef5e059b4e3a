#!/usr/bin/env node
// The `o3` command: runs the compiled CLI (npm install builds dist/).
import('../dist/cli/main.js').catch((err) => {
  console.error(`o3: ${err?.code === 'ERR_MODULE_NOT_FOUND' ? 'not built yet: run npm install (or npm run build)' : err?.message ?? err}`)
  process.exit(1)
})
