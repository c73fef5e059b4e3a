#!/usr/bin/env node
// `npm run bench`: the compiled benchmark (tsc emits it to dist/ on npm install / npm run build).
import '../dist/bench/main.js'
