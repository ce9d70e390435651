// Drives Synap's /trpc procedures with the official tRPC client, untyped (there is
// no TypeScript router to import): the proxy `client.notes.create.mutate(input)`
// and the untyped client's `query(path, input)` / `mutation(path, input)`, over
// `httpLink` and `httpBatchLink`.
//
// Run by the Rust test `tests/it/trpc.rs` against the real server:
//   SYNAP_TRPC_URL=http://127.0.0.1:PORT/trpc SYNAP_TOKEN=syn_… SYNAP_OTHER_TOKEN=syn_… node client.mjs
// Prints one JSON line per step and exits non-zero on any mismatch.

import { randomUUID } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import {
  TRPCClientError,
  createTRPCClient,
  getUntypedClient,
  httpBatchLink,
  httpLink,
} from "@trpc/client";

const url = process.env.SYNAP_TRPC_URL;
const token = process.env.SYNAP_TOKEN;
const otherToken = process.env.SYNAP_OTHER_TOKEN;
if (!url || !token || !otherToken) {
  console.error("set SYNAP_TRPC_URL, SYNAP_TOKEN and SYNAP_OTHER_TOKEN");
  process.exit(2);
}

const failures = [];
let checks = 0;

function print(step, value) {
  console.log(JSON.stringify({ step, value }));
}

function check(step, condition, detail) {
  checks += 1;
  if (!condition) {
    failures.push({ step, detail });
    console.log(JSON.stringify({ step, failed: detail }));
  }
}

function equal(step, actual, expected) {
  check(step, isDeepStrictEqual(actual, expected), { actual, expected });
}

/** A fetch that records every request's URL, method and response status. */
function recordingFetch(log) {
  return async (input, init) => {
    const response = await fetch(input, init);
    log.push({ url: String(input), method: init?.method ?? "GET", status: response.status });
    return response;
  };
}

const bearer = (secret) => () => ({ Authorization: `Bearer ${secret}` });

const singleLog = [];
const batchLog = [];
const single = createTRPCClient({
  links: [httpLink({ url, headers: bearer(token), fetch: recordingFetch(singleLog) })],
});
const batched = createTRPCClient({
  links: [httpBatchLink({ url, headers: bearer(token), fetch: recordingFetch(batchLog) })],
});
const untyped = getUntypedClient(single);
const other = createTRPCClient({ links: [httpBatchLink({ url, headers: bearer(otherToken) })] });
const anonymous = createTRPCClient({ links: [httpLink({ url })] });

/** Runs `call`, which must fail with a TRPCClientError of tRPC code `key`. */
async function expectError(step, call, key, httpStatus, jsonRpc) {
  try {
    const value = await call();
    check(step, false, { expected: key, got: value });
  } catch (error) {
    const isClientError = error instanceof TRPCClientError;
    check(step, isClientError, { expected: "TRPCClientError", got: String(error) });
    if (!isClientError) return;
    print(step, { message: error.message, shape: error.shape });
    equal(`${step}: data.code`, error.data?.code, key);
    equal(`${step}: data.httpStatus`, error.data?.httpStatus, httpStatus);
    equal(`${step}: shape.code`, error.shape?.code, jsonRpc);
    check(`${step}: message`, typeof error.message === "string" && error.message.length > 0, error.message);
    return error;
  }
}

async function main() {
  // capture.thought through the proxy, over httpLink.
  const captured = await single.capture.thought.mutate({
    content: "Call the plumber about the leak",
    context: { from: "trpc-client-test" },
  });
  print("capture.thought", captured);
  equal("capture.thought: success", captured.success, true);
  check("capture.thought: message", typeof captured.message === "string", captured);
  check("capture.thought: entityId", typeof captured.entityId === "string", captured);

  // notes.create through the untyped client.
  const content = "# Plumbing\nThe kitchen sink leaks under the basin.";
  const created = await untyped.mutation("notes.create", {
    content,
    tags: ["home", "repairs"],
    autoEnrich: true,
  });
  print("notes.create", created);
  equal("notes.create: success", created.success, true);
  equal("notes.create: note.id", created.note?.id, created.entityId);
  equal("notes.create: title", created.note?.title, "Plumbing");
  equal("notes.create: content", created.note?.content, content);
  equal("notes.create: tags", created.note?.tags, ["home", "repairs"]);
  check("notes.create: dates", Boolean(Date.parse(created.note?.createdAt)), created.note);

  // notes.search through the proxy.
  const hits = await single.notes.search.query({ query: "leak" });
  print("notes.search", hits);
  check("notes.search: array", Array.isArray(hits), hits);
  equal(
    "notes.search: both notes",
    hits.map((h) => h.note.id).sort(),
    [captured.entityId, created.entityId].sort(),
  );
  for (const hit of hits) {
    check("notes.search: score", typeof hit.score === "number", hit);
    check("notes.search: snippet", hit.snippet.includes("<mark>"), hit);
    check("notes.search: content", hit.note.content.includes("leak"), hit);
  }

  // events.log, then events.list by the logged type.
  const correlationId = randomUUID();
  const logged = await batched.events.log.mutate({
    type: "client.opened",
    data: { screen: "home" },
    source: "sync",
    correlationId,
  });
  print("events.log", logged);
  equal("events.log: type", logged.type, "client.opened");
  equal("events.log: data", logged.data, { screen: "home" });
  equal("events.log: source", logged.source, "sync");
  equal("events.log: correlationId", logged.correlationId, correlationId);
  const byType = await untyped.query("events.list", { type: "client.opened" });
  print("events.list type=client.opened", byType);
  equal("events.list by logged type", byType.map((e) => e.id), [logged.id]);

  // events.list: the caller's events, newest first.
  const events = await single.events.list.query({ limit: 10 });
  print("events.list", events);
  check("events.list: array", Array.isArray(events) && events.length >= 3, events);
  const positions = events.map((e) => e.position);
  equal("events.list: newest first", positions, [...positions].sort((a, b) => b - a));
  equal("events.list: newest is the logged event", events[0]?.id, logged.id);
  check("events.list: one user", new Set(events.map((e) => e.userId)).size === 1, events);
  const createdEvents = await single.events.list.query({ type: "entity.created", limit: 100 });
  equal(
    "events.list type=entity.created",
    createdEvents.map((e) => e.aggregateId),
    [created.entityId, captured.entityId],
  );

  // A batch: three queries in one tick become one request.
  const before = batchLog.length;
  const [recent, leak, plumber] = await Promise.all([
    batched.events.list.query({ limit: 2 }),
    batched.notes.search.query({ query: "basin", limit: 5 }),
    batched.notes.search.query({ query: "plumber" }),
  ]);
  print("batch", { recent, leak, plumber, requests: batchLog.slice(before) });
  equal("batch: one request", batchLog.length - before, 1);
  const request = batchLog[before];
  check("batch: batch=1", request?.url.includes("batch=1"), request);
  check(
    "batch: joined paths",
    request?.url.includes("/events.list,notes.search,notes.search?"),
    request,
  );
  equal("batch: status", request?.status, 200);
  equal("batch: events", recent.length, 2);
  equal("batch: search 1", leak.map((h) => h.note.id), [created.entityId]);
  equal("batch: search 2", plumber.map((h) => h.note.id), [captured.entityId]);

  // A batch where one call fails: the others still succeed; the status is 207.
  const mixedBefore = batchLog.length;
  const settled = await Promise.allSettled([
    batched.notes.search.query({ query: "plumber" }),
    batched.notes.search.query({ query: "" }),
  ]);
  print("mixed batch", { settled: settled.map((s) => s.status), requests: batchLog.slice(mixedBefore) });
  equal("mixed batch: outcomes", settled.map((s) => s.status), ["fulfilled", "rejected"]);
  equal("mixed batch: one request", batchLog.length - mixedBefore, 1);
  equal("mixed batch: 207", batchLog[mixedBefore]?.status, 207);
  const rejection = settled[1].reason;
  check("mixed batch: TRPCClientError", rejection instanceof TRPCClientError, String(rejection));
  equal("mixed batch: BAD_REQUEST", rejection?.data?.code, "BAD_REQUEST");
  equal("mixed batch: path", rejection?.data?.path, "notes.search");

  // Errors.
  await expectError("no token", () => anonymous.events.list.query({}), "UNAUTHORIZED", 401, -32001);
  await expectError(
    "no token (mutation)",
    () => anonymous.notes.create.mutate({ content: "x" }),
    "UNAUTHORIZED",
    401,
    -32001,
  );
  await expectError("limit 0", () => single.events.list.query({ limit: 0 }), "BAD_REQUEST", 400, -32600);
  await expectError("limit 101", () => batched.events.list.query({ limit: 101 }), "BAD_REQUEST", 400, -32600);
  await expectError("empty content", () => single.notes.create.mutate({ content: "" }), "BAD_REQUEST", 400, -32600);
  await expectError(
    "useRAG",
    () => single.notes.search.query({ query: "leak", useRAG: true }),
    "BAD_REQUEST",
    400,
    -32600,
  );
  await expectError("unknown procedure", () => untyped.query("notes.nope", {}), "NOT_FOUND", 404, -32004);
  await expectError(
    "mutation called as a query",
    () => untyped.query("notes.create", { content: "x" }),
    "METHOD_NOT_SUPPORTED",
    405,
    -32005,
  );
  const statuses = singleLog.filter((r) => r.status >= 400).map((r) => r.status);
  check("error statuses", statuses.includes(400) && statuses.includes(404), singleLog);

  // Isolation: the other user sees nothing of this user's.
  const otherHits = await other.notes.search.query({ query: "leak" });
  equal("other user: search", otherHits, []);
  const otherEvents = await other.events.list.query({ type: "entity.created" });
  equal("other user: events by type", otherEvents, []);
  const otherLogged = await other.events.list.query({ type: "client.opened" });
  equal("other user: logged events", otherLogged, []);
}

try {
  await main();
} catch (error) {
  failures.push({ step: "unexpected exception", detail: String(error?.stack ?? error) });
  console.error(error);
}

const summary = { ok: failures.length === 0, checks, failures };
console.log(JSON.stringify(summary));
if (failures.length > 0) {
  console.error(`${failures.length} of ${checks} checks failed:`);
  for (const failure of failures) console.error(JSON.stringify(failure));
  process.exit(1);
}
