// Unit tests of web/idempotent-client.js: node --test web/test/ (make test-web).
// A fake fetch, a fake sessionStorage and a fake clock whose timers fire
// only when the test lets time pass (no real sleeps).
import { test } from "node:test";
import assert from "node:assert/strict";
import { IdempotentClient, parseRetryAfter, classify } from "../idempotent-client.js";

/** A clock whose timers fire when run() finds nothing else to do. */
class FakeClock {
  t = 1_700_000_000_000;
  timers = [];
  seq = 0;
  now = () => this.t;
  setTimeout = (fn, ms) => {
    const id = ++this.seq;
    this.timers.push({ id, at: this.t + Math.max(0, ms), fn });
    return id;
  };
  clearTimeout = (id) => {
    this.timers = this.timers.filter((x) => x.id !== id);
  };
  /** Lets every pending promise callback run. */
  async flush() {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  }
  /** Runs until p settles, advancing to the next timer whenever everything else waits. */
  async run(p) {
    let done = false;
    p.then(
      () => (done = true),
      () => (done = true),
    );
    for (let steps = 0; steps < 1000; steps++) {
      await this.flush();
      if (done) return p;
      if (this.timers.length === 0) throw new Error("deadlock: the call waits on nothing the test controls");
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers.shift();
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    throw new Error("more than 1000 timer steps");
  }
}

class FakeStorage {
  map = new Map();
  getItem(k) {
    return this.map.has(k) ? this.map.get(k) : null;
  }
  setItem(k, v) {
    this.map.set(k, String(v));
  }
  removeItem(k) {
    this.map.delete(k);
  }
}

const json = (status, body, headers = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
const problem = (status, slug, headers = {}) =>
  new Response(JSON.stringify({ type: "https://docs.acme.dev/problems/" + slug, title: slug, status }), {
    status,
    headers: { "Content-Type": "application/problem+json", ...headers },
  });
const paid = { payment_id: "pay_1", order_id: "ord_1", amount: 500000, currency: "INR", status: "CAPTURED" };

/** A fake fetch answering from a script: one function per request, the last one repeated. */
function fakeFetch(...script) {
  const calls = [];
  const f = async (url, init) => {
    const i = calls.length;
    calls.push({ url, init, headers: new Headers(init.headers), time: f.clock?.t });
    const step = script[Math.min(i, script.length - 1)];
    return step(init, i);
  };
  f.calls = calls;
  return f;
}

let uuid = 0;
function setup(fetch, opts = {}) {
  const clock = new FakeClock();
  fetch.clock = clock;
  const storage = opts.storage ?? new FakeStorage();
  const events = [];
  const client = new IdempotentClient({
    baseURL: "http://api.test/",
    token: () => "tok",
    fetch,
    storage,
    newKey: () => "key-" + ++uuid,
    now: clock.now,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    random: () => 0.5,
    onEvent: (e) => events.push(e),
    ...opts,
  });
  return { client, clock, storage, events };
}

const pay = { operation: "pay:ord_1", path: "/payments", body: { order_id: "ord_1", amount: 500000, currency: "INR", payment_method: "card_visa" } };

test("a call sends its own key, Prefer: wait, the token and the JSON body", async () => {
  const fetch = fakeFetch(() => json(201, paid));
  const { client, clock } = setup(fetch);
  const r = await clock.run(client.post({ ...pay, headers: { "idempotency-key": "browser-made-key" } }));
  assert.equal(r.outcome, "succeeded");
  assert.equal(r.status, 201);
  assert.deepEqual(r.body, paid);
  assert.equal(fetch.calls.length, 1);
  const { url, init, headers } = fetch.calls[0];
  assert.equal(url, "http://api.test/payments");
  assert.equal(init.method, "POST");
  assert.equal(headers.get("Idempotency-Key"), r.key, "a browser-made key must be replaced by the page's own");
  assert.match(r.key, /^key-/);
  assert.equal(headers.get("Prefer"), "wait=5");
  assert.equal(headers.get("Authorization"), "Bearer tok");
  assert.deepEqual(JSON.parse(init.body), pay.body);
  assert.equal(init.mode, "cors");
  assert.equal(init.credentials, "omit");
  assert.equal(init.cache, undefined, "a cache mode such as no-store makes Chromium preflight every POST");
});

test("one key per operation, kept in storage across calls and a reload (a new client)", async () => {
  const fetch = fakeFetch(() => json(201, paid, { "Idempotent-Replayed": "true" }));
  const { client, clock, storage } = setup(fetch);
  const a = await clock.run(client.post(pay));
  const b = await clock.run(client.post(pay));
  assert.equal(a.key, b.key);
  assert.equal(b.replayed, true);
  const reloaded = setup(fetch, { storage }).client; // same sessionStorage, new page
  const c = await clock.run(reloaded.post(pay));
  assert.equal(c.key, a.key);
  const other = await clock.run(client.post({ ...pay, operation: "pay:ord_2", body: { ...pay.body, order_id: "ord_2" } }));
  assert.notEqual(other.key, a.key);
  assert.equal(new Set(fetch.calls.map((c) => c.headers.get("Idempotency-Key"))).size, 2);
});

test("clicks while a call is in flight join it: one request", async () => {
  let release;
  const fetch = fakeFetch(() => new Promise((r) => (release = () => r(json(201, paid)))));
  const { client, clock } = setup(fetch);
  const clicks = [client.post(pay), client.post(pay), client.post(pay)];
  await clock.flush();
  assert.equal(fetch.calls.length, 1);
  assert.equal(client.newAttempt(pay.operation), false, "newAttempt must be refused while a call is in flight");
  release();
  const rs = await clock.run(Promise.all(clicks));
  assert.equal(fetch.calls.length, 1);
  assert.ok(rs.every((r) => r === rs[0] && r.outcome === "succeeded"));
});

for (const [name, first] of [
  ["a network error", () => Promise.reject(new TypeError("Failed to fetch"))],
  ["503 payment-provider-unavailable", () => problem(503, "payment-provider-unavailable", { "Retry-After": "1" })],
  ["503 idempotency-store-unavailable", () => problem(503, "idempotency-store-unavailable", { "Retry-After": "2" })],
  ["500 idempotency-internal-error", () => problem(500, "idempotency-internal-error")],
  ["429", () => json(429, { message: "Too Many Requests" })],
  ["409 payment-in-progress", () => problem(409, "payment-in-progress", { "Retry-After": "3" })],
  ["409 idempotency-key-in-use", () => problem(409, "idempotency-key-in-use", { "Retry-After": "1" })],
  ["409 idempotency-lease-lost", () => problem(409, "idempotency-lease-lost", { "Retry-After": "1" })],
]) {
  test(`${name} is retried with the same key, after Retry-After when given`, async () => {
    const fetch = fakeFetch(first, () => json(201, paid));
    const { client, clock, events } = setup(fetch);
    const r = await clock.run(client.post(pay));
    assert.equal(r.outcome, "succeeded");
    assert.equal(r.attempts, 2);
    assert.equal(fetch.calls.length, 2);
    assert.equal(fetch.calls[1].headers.get("Idempotency-Key"), fetch.calls[0].headers.get("Idempotency-Key"));
    const retry = events.find((e) => e.type === "retry");
    const ra = await Promise.resolve()
      .then(first)
      .then((resp) => resp.headers.get("Retry-After"), () => null);
    const want = ra ? Number(ra) * 1000 : 250 * 0.75; // equal jitter of 250 ms at random() = 0.5
    assert.equal(retry.delayMs, want);
    assert.equal(fetch.calls[1].time - fetch.calls[0].time, want);
  });
}

for (const [status, slug, outcome] of [
  [400, "idempotency-key-missing", "rejected"],
  [400, "request-body-invalid", "rejected"],
  [401, null, "rejected"],
  [403, null, "rejected"],
  [404, "order-not-found", "rejected"],
  [413, "request-body-too-large", "rejected"],
  [409, "idempotency-result-not-retained", "rejected"],
  [409, "transaction-conflict", "rejected"],
  [422, "idempotency-key-reused", "programming-error"],
  [422, "payment-does-not-match-order", "programming-error"],
  [402, "payment-declined", "declined"],
  [409, "order-already-paid", "unexpected"],
  [415, null, "rejected"],
  [409, "payment-declined", "unexpected"],
  [418, null, "unexpected"],
  [302, null, "unexpected"],
]) {
  test(`${status} ${slug ?? ""} is final (${outcome}): never retried, key kept`, async () => {
    const fetch = fakeFetch(() => (slug ? problem(status, slug) : json(status, { message: "x" })));
    const { client, clock, storage } = setup(fetch);
    const r = await clock.run(client.post(pay));
    assert.equal(r.outcome, outcome);
    assert.equal(r.status, status);
    assert.equal(fetch.calls.length, 1);
    if (slug) assert.equal(r.problem, slug);
    if (outcome === "unexpected") assert.match(r.error, new RegExp(`status ${status}`));
    assert.equal(JSON.parse(storage.getItem("idem:pay:ord_1")).key, r.key, "a final or unknown answer must never mint a new key");
    const again = await clock.run(client.post(pay));
    assert.equal(again.key, r.key);
  });
}

test("200 already_paid is final: one request, outcome already-paid", async () => {
  const fetch = fakeFetch(() => json(200, { ...paid, already_paid: true }));
  const { client, clock } = setup(fetch);
  const r = await clock.run(client.post(pay));
  assert.equal(r.outcome, "already-paid");
  assert.equal(r.body.payment_id, "pay_1");
  assert.equal(fetch.calls.length, 1);
});

test("a decline: same key until newAttempt, then a new key", async () => {
  const fetch = fakeFetch(
    () => problem(402, "payment-declined"),
    () => problem(402, "payment-declined"),
    () => json(201, paid),
  );
  const { client, clock } = setup(fetch);
  const declined = await clock.run(client.post(pay));
  assert.equal(declined.outcome, "declined");
  const replay = await clock.run(client.post(pay));
  assert.equal(replay.key, declined.key);
  assert.equal(client.newAttempt(pay.operation), true);
  const ok = await clock.run(client.post({ ...pay, body: { ...pay.body, payment_method: "card_amex" } }));
  assert.equal(ok.outcome, "succeeded");
  assert.notEqual(ok.key, declined.key);
});

test("another body under the same key is refused locally as a programming error", async () => {
  const fetch = fakeFetch(() => json(201, paid));
  const { client, clock } = setup(fetch);
  await clock.run(client.post(pay));
  const r = await clock.run(client.post({ ...pay, body: { ...pay.body, payment_method: "card_amex" } }));
  assert.equal(r.outcome, "programming-error");
  assert.equal(fetch.calls.length, 1, "nothing sent");
});

test("exponential backoff with jitter, capped, until the deadline; then gave-up with the key kept", async () => {
  const fetch = fakeFetch(() => Promise.reject(new TypeError("Failed to fetch")));
  const { client, clock, events, storage } = setup(fetch, { random: () => 0 });
  const start = clock.t;
  const r = await clock.run(client.post(pay));
  assert.equal(r.outcome, "gave-up");
  assert.equal(r.status, 0);
  assert.match(r.error, /Failed to fetch/);
  const delays = events.filter((e) => e.type === "retry").map((e) => e.delayMs);
  assert.deepEqual(delays.slice(0, 6), [125, 250, 500, 1000, 2000, 2000]); // half of 250·2^n, capped at 4000
  assert.ok(clock.t - start <= 30000, `ran ${clock.t - start} ms past a 30 s deadline`);
  assert.equal(fetch.calls.length, r.attempts);
  assert.equal(JSON.parse(storage.getItem("idem:pay:ord_1")).key, r.key);
});

/** A fake navigator.onLine with its "online" event. */
function fakeOnline(online) {
  const listeners = new Set();
  return {
    isOnline: () => online,
    onOnline: (cb) => {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
    set(v) {
      online = v;
      if (v) for (const cb of [...listeners]) cb();
    },
    listeners,
  };
}

test("offline: no attempts until the browser is back online, then one at once with the same key", async () => {
  const net = fakeOnline(false);
  const fetch = fakeFetch(
    () => Promise.reject(new TypeError("Failed to fetch")),
    () => json(201, paid),
  );
  const { client, clock } = setup(fetch, { online: net });
  const call = client.post(pay);
  await clock.flush();
  assert.equal(fetch.calls.length, 1);
  clock.t += 2000; // two seconds offline, with no timer firing
  net.set(true);
  const r = await clock.run(call);
  assert.equal(r.outcome, "succeeded");
  assert.equal(fetch.calls.length, 2);
  assert.equal(fetch.calls[1].time - fetch.calls[0].time, 2000);
  assert.equal(fetch.calls[1].headers.get("Idempotency-Key"), r.key);
  assert.equal(net.listeners.size, 0, "the online listener must be removed");
  assert.equal(clock.timers.length, 0, "the deadline timer must be cleared");
});

test("offline until the deadline: gave-up after one attempt", async () => {
  const net = fakeOnline(false);
  const fetch = fakeFetch(() => Promise.reject(new TypeError("Failed to fetch")));
  const { client, clock } = setup(fetch, { online: net });
  const start = clock.t;
  const r = await clock.run(client.post(pay));
  assert.equal(r.outcome, "gave-up");
  assert.equal(fetch.calls.length, 1);
  assert.equal(clock.t - start, 30000);
  assert.equal(net.listeners.size, 0);
});

test("Retry-After is capped", async () => {
  const fetch = fakeFetch(() => problem(503, "idempotency-store-unavailable", { "Retry-After": "3600" }), () => json(201, paid));
  const { client, clock, events } = setup(fetch);
  const r = await clock.run(client.post(pay));
  assert.equal(r.outcome, "succeeded");
  assert.equal(events.find((e) => e.type === "retry").delayMs, 10000);
});

test("a Retry-After past the deadline gives up at once rather than waiting", async () => {
  const fetch = fakeFetch(() => problem(409, "payment-in-progress", { "Retry-After": "8" }));
  const { client, clock } = setup(fetch, { deadlineMs: 5000 });
  const start = clock.t;
  const r = await clock.run(client.post(pay));
  assert.equal(r.outcome, "gave-up");
  assert.equal(r.problem, "payment-in-progress");
  assert.equal(clock.t, start);
});

test("an attempt with no answer is aborted after attemptTimeoutMs and retried with the same key", async () => {
  const fetch = fakeFetch(
    (init) => new Promise((_, reject) => init.signal.addEventListener("abort", () => reject(init.signal.reason))),
    () => json(201, paid),
  );
  const { client, clock } = setup(fetch, { attemptTimeoutMs: 7000 });
  const r = await clock.run(client.post(pay));
  assert.equal(r.outcome, "succeeded");
  assert.equal(fetch.calls.length, 2);
  assert.equal(fetch.calls[1].time - fetch.calls[0].time, 7000 + 187.5);
});

test("Prefer: wait shrinks to fit the remaining deadline and is left out when none fits", async () => {
  const fetch = fakeFetch(() => problem(503, "x", { "Retry-After": "2" }), () => json(201, paid));
  const { client, clock } = setup(fetch, { deadlineMs: 4000 });
  await clock.run(client.post(pay));
  assert.equal(fetch.calls[0].headers.get("Prefer"), "wait=3");
  assert.equal(fetch.calls[1].headers.get("Prefer"), "wait=1"); // 2 s left, minus a 1 s margin
  const late = setup(fakeFetch(() => problem(503, "x", { "Retry-After": "1" }), () => json(201, paid)), { deadlineMs: 2500 });
  await late.clock.run(late.client.post(pay));
  assert.equal(late.client.fetch.calls[1].headers.get("Prefer"), null); // 1.5 s left: no whole second to wait
  const none = setup(fakeFetch(() => json(201, paid)), { waitSeconds: 0 });
  await none.clock.run(none.client.post(pay));
  assert.equal(none.client.fetch.calls[0].headers.get("Prefer"), null);
});

test("parseRetryAfter: seconds, an HTTP date, garbage", () => {
  const now = Date.parse("2026-12-02T10:00:00Z");
  assert.equal(parseRetryAfter("3", now), 3000);
  assert.equal(parseRetryAfter("Wed, 02 Dec 2026 10:00:05 GMT", now), 5000);
  assert.equal(parseRetryAfter("Wed, 02 Dec 2026 09:00:00 GMT", now), 0);
  assert.equal(parseRetryAfter("soon", now), null);
  assert.equal(parseRetryAfter(null, now), null);
});

test("classify: 201 and a plain 200 succeed; 200 already_paid is its own final outcome", () => {
  assert.equal(classify(201, undefined, paid), "succeeded");
  assert.equal(classify(200, undefined, paid), "succeeded");
  assert.equal(classify(200, undefined, { ...paid, already_paid: true }), "already-paid");
  assert.equal(classify(409, undefined, "text"), "unexpected");
});
