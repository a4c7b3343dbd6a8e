// Serve an in-memory PGlite (PostgreSQL 17 in WASM) with TimescaleDB over TCP.
//
// Why: the SQL tests need a real TimescaleDB, and this is the only one we can
// install from a package registry on every machine (no Docker, no server
// packages). It is a test double only: one database session is shared by
// all connections, COPY FROM STDIN crashes the WASM, and there are no
// background workers (run policies with CALL run_job(id)).
//
// Usage: node server.mjs [PORT]   (or env PGLITE_PORT; 0 picks a free port)
// Prints exactly one line, "READY <port>", on stdout once it is listening;
// everything else goes to stderr. Exits with 0 on SIGTERM/SIGINT.
// With PGLITE_EXIT_ON_STDIN_EOF=1 it also exits when its stdin closes, so a
// parent that dies without cleaning up does not leave it running.

import { PGlite } from '@electric-sql/pglite'
import { timescaledb } from '@electric-sql/pglite/timescaledb'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

const HOST = '127.0.0.1'
// pglite-socket 0.0.22 defaults to ONE connection (its docs say 100): a client that
// reconnects before the server has seen the previous socket close is then refused
// ("server closed the connection unexpectedly"). Connections still share one session.
const MAX_CONNECTIONS = 100
const SHUTDOWN_GRACE_MS = 3000

function parsePort() {
  const raw = process.argv[2] ?? process.env.PGLITE_PORT ?? ''
  if (!/^\d+$/.test(raw) || Number(raw) > 65535) {
    console.error(`usage: node server.mjs PORT (or env PGLITE_PORT); got ${JSON.stringify(raw)}`)
    process.exit(2)
  }
  return Number(raw)
}

const port = parsePort()
let db = null
let server = null
let stopping = false
let ready = false

async function shutdown(reason, code) {
  if (stopping) return
  stopping = true
  console.error(`pglite-timescale: stopping (${reason})`)
  // Never hang on shutdown: the harness escalates to SIGKILL anyway.
  setTimeout(() => process.exit(code), SHUTDOWN_GRACE_MS).unref()
  try {
    if (server) await server.stop()
    if (db) await db.close()
  } catch (err) {
    console.error('pglite-timescale: error while stopping:', err)
  }
  process.exit(code)
}

process.on('SIGTERM', () => shutdown('SIGTERM', 0))
process.on('SIGINT', () => shutdown('SIGINT', 0))
if (process.env.PGLITE_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => shutdown('stdin closed', 0))
  process.stdin.on('error', () => shutdown('stdin error', 0))
  process.stdin.resume()
}

try {
  db = new PGlite('memory://', { extensions: { timescaledb } })
  await db.waitReady
  server = new PGLiteSocketServer({ db, host: HOST, port, maxConnections: MAX_CONNECTIONS })
  server.addEventListener('error', (event) => {
    console.error('pglite-timescale: socket server error:', event.detail)
    // start() never settles when listen() fails (e.g. EADDRINUSE): fail loudly instead.
    if (!ready) process.exit(1)
  })
  await server.start()
  ready = true
  // getServerConn() is "host:port" with the port actually bound (matters for 0).
  const bound = Number(server.getServerConn().split(':').pop())
  if (!stopping) process.stdout.write(`READY ${bound}\n`)
} catch (err) {
  console.error('pglite-timescale: failed to start:', err)
  process.exit(1)
}
