// Builds the demo page into dist/: the bundled app, its HTML and CSS, and
// sockjs-client's standalone build (the edge's SockJS iframe page loads it from
// /sockjs.min.js, so that no transport ever reaches for a CDN).
//
// Usage: npm run build   (after npm ci; `make web` does both)
import { build } from 'esbuild';
import { copyFile, mkdir, readdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');
const require = createRequire(import.meta.url);

// Start from an empty dist/ so that files removed from src/ do not linger in
// the embedded bundle, but keep dist/README.placeholder: it is the one
// committed file there and keeps web.go's go:embed pattern matching on a fresh
// clone (see web.go).
await mkdir(dist, { recursive: true });
for (const name of await readdir(dist)) {
  if (name !== 'README.placeholder') {
    await rm(join(dist, name), { recursive: true, force: true });
  }
}

await build({
  entryPoints: [join(here, 'src/app.js')],
  outfile: join(dist, 'app.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020'],
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  logLevel: 'warning',
  define: {
    // sockjs-client is CommonJS written for browserify: it reads `global` and
    // only loads its `debug` logging outside production.
    global: 'globalThis',
    'process.env.NODE_ENV': '"production"',
  },
});

await Promise.all([
  copyFile(join(here, 'index.html'), join(dist, 'index.html')),
  copyFile(join(here, 'style.css'), join(dist, 'style.css')),
  copyFile(
    require.resolve('sockjs-client/dist/sockjs.min.js'),
    join(dist, 'sockjs.min.js'),
  ),
]);
