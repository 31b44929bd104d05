#!/usr/bin/env python3
"""Drives `plumb serve` with the real openai client (tests/serve_openai_test.cpp runs it).

    serve_openai_test.py --plumb build/plumb --model SmolLM2.gguf SECTION

SECTION: basics | errors | disconnect | invariance. Each section starts its own server on a
free loopback port (--port 0, the port read from its log) and stops it at the end. Exit 0:
passed; 77: skipped (no openai module), with the reason; anything else: failed.
"""
import argparse
import concurrent.futures
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

try:
    import openai
except ImportError:
    print("skip: the openai Python module is not installed (scripts/install-deps)")
    sys.exit(77)

QUESTION = "What is the capital of France? Answer in one sentence."


class Server:
    """plumb serve on 127.0.0.1, any free port."""

    def __init__(self, plumb, model, *args):
        self.proc = subprocess.Popen([plumb, "serve", "-m", model, "--port", "0", *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log = []
        self.port = None
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.log.append(line)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.proc.kill()
            raise RuntimeError("plumb serve did not start:\n" + "".join(self.log))
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stderr:
            self.log.append(line)

    def client(self, key="none", **kw):
        return openai.OpenAI(base_url=f"http://127.0.0.1:{self.port}/v1", api_key=key, max_retries=0,
                             timeout=120, **kw)

    def raw(self, method, path, body=b"", headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, dict(r.getheaders()), data

    def metrics(self):
        status, _, data = self.raw("GET", "/metrics")
        assert status == 200, status
        values = {}
        for line in data.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("plumb serve did not stop on SIGTERM")
        assert self.proc.returncode == 0, f"plumb serve exited with {self.proc.returncode}:\n" + "".join(self.log)


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok:", what.split("\n")[0][:160])


def expect_status(exc_type, status, fn):
    try:
        fn()
    except exc_type as e:
        check(e.status_code == status, f"{exc_type.__name__} {e.status_code} (want {status}): {e.body}")
        return e
    raise AssertionError(f"no {exc_type.__name__} ({status})")


def still_serving(client):
    r = client.completions.create(model="m", prompt="The sky is", max_tokens=3, temperature=0)
    check(r.choices[0].finish_reason in ("length", "stop"), "the server goes on serving")


# ---------------------------------------------------------------------------------------------
def basics(srv):
    c = srv.client()
    models = c.models.list()
    check(len(models.data) == 1 and models.data[0].id, f"/v1/models lists the model: {models.data[0].id}")
    status, _, data = srv.raw("GET", "/health")
    check(status == 200 and json.loads(data)["status"] == "ok", "/health")

    # The demo's question, as scripts/demo asks it (greedy).
    r = c.chat.completions.create(model="m", messages=[{"role": "user", "content": QUESTION}], temperature=0,
                                  max_tokens=64)
    answer = r.choices[0].message.content
    check("Paris" in answer, f"SmolLM2 answers Paris: {answer!r}")
    check(r.choices[0].finish_reason == "stop" and r.usage.completion_tokens > 0 and r.usage.prompt_tokens > 10,
          f"finish_reason and usage: {r.usage}")

    # Streaming gives the same text, a role first, a finish_reason last, and the usage chunk.
    chunks = list(c.chat.completions.create(model="m", messages=[{"role": "user", "content": QUESTION}],
                                            temperature=0, max_tokens=64, stream=True,
                                            stream_options={"include_usage": True}))
    check(chunks[0].choices[0].delta.role == "assistant", "the first chunk carries the role")
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    check(text == answer, f"streamed text equals the answer: {text!r}")
    finals = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    check(finals == ["stop"], f"one finish_reason: {finals}")
    check(not chunks[-1].choices and chunks[-1].usage.total_tokens == r.usage.total_tokens,
          f"the last chunk is the usage: {chunks[-1].usage}")

    # Completions, streamed and not, with max_tokens.
    r = c.completions.create(model="m", prompt="1, 2, 3, 4,", max_tokens=6, temperature=0)
    check(r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 6,
          f"completion stops at max_tokens: {r.choices[0].text!r}")
    streamed = "".join(ch.choices[0].text for ch in c.completions.create(
        model="m", prompt="1, 2, 3, 4,", max_tokens=6, temperature=0, stream=True))
    check(streamed == r.choices[0].text, f"streamed completion is the same: {streamed!r}")

    # Stop strings: the text ends before the first one.
    full = c.completions.create(model="m", prompt="1, 2, 3, 4,", max_tokens=12, temperature=0).choices[0].text
    r = c.completions.create(model="m", prompt="1, 2, 3, 4,", max_tokens=12, temperature=0, stop=["7"])
    check(r.choices[0].finish_reason == "stop" and r.choices[0].text == full[:full.index("7")],
          f"stop string: {r.choices[0].text!r} from {full!r}")
    r = c.chat.completions.create(model="m", messages=[{"role": "user", "content": QUESTION}], temperature=0,
                                  stop=["Paris"], stream=True)
    text = "".join(ch.choices[0].delta.content or "" for ch in r if ch.choices)
    check("Paris" not in text and answer.startswith(text), f"streamed stop string: {text!r}")

    # Logprobs: chat (top_logprobs) and completions (logprobs = N).
    r = c.chat.completions.create(model="m", messages=[{"role": "user", "content": QUESTION}], temperature=0,
                                  max_tokens=8, logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    check(len(content) == r.usage.completion_tokens or len(content) == r.usage.completion_tokens - 1,
          f"one logprob per token: {len(content)}")
    check(all(len(t.top_logprobs) == 3 and t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob >= t.top_logprobs[2].logprob
              for t in content), "three alternatives, best first")
    check(all(t.token == t.top_logprobs[0].token and t.logprob == t.top_logprobs[0].logprob for t in content),
          "greedy picks the best alternative")
    check("".join(t.token for t in content) == r.choices[0].message.content, "tokens spell the text")
    r = c.completions.create(model="m", prompt="1, 2, 3, 4,", max_tokens=4, temperature=0, logprobs=2)
    lp = r.choices[0].logprobs
    check(len(lp.tokens) == 4 and len(lp.token_logprobs) == 4 and all(len(t) == 2 for t in lp.top_logprobs)
          and lp.text_offset == sorted(lp.text_offset), f"completion logprobs: {lp.tokens}")

    # Seeded sampling repeats; metrics count it all.
    kw = dict(model="m", prompt="Once upon a time", max_tokens=16, temperature=1.0, seed=42)
    check(c.completions.create(**kw).choices[0].text == c.completions.create(**kw).choices[0].text,
          "the same seed gives the same text")
    m = srv.metrics()
    check(m['plumb_requests_total{code="200"}'] >= 10 and m["plumb_generated_tokens_total"] > 50
          and m["plumb_time_to_first_token_seconds_count"] >= 10 and "plumb_queue_depth" in m
          and "plumb_generation_tokens_per_second" in m, "/metrics counts requests, tokens, time to first token")


# ---------------------------------------------------------------------------------------------
def errors(srv, key):
    c = srv.client(key)
    expect_status(openai.AuthenticationError, 401, lambda: srv.client("wrong").models.list())
    status, _, _ = srv.raw("GET", "/v1/models")
    check(status == 401, "no Authorization header: 401")
    status, _, _ = srv.raw("GET", "/health")
    check(status == 200, "/health needs no key")
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    e = expect_status(openai.APIStatusError, 413, lambda: c.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "a" * 10_000_000}]))
    check(e.body["code"] == "request_too_large", "10 MB body: 413 request_too_large")

    body = b'{"messages": [{"role": "user", "content": "caf\xc3 \xff"}]}'
    status, _, data = srv.raw("POST", "/v1/chat/completions", body, auth)
    err = json.loads(data)["error"]
    check(status == 400 and err["code"] == "invalid_utf8" and err["type"] == "invalid_request_error",
          f"invalid UTF-8: 400 {err['message']}")

    status, _, data = srv.raw("POST", "/v1/chat/completions", b'{"messages": [', auth)
    check(status == 400 and json.loads(data)["error"]["code"] == "invalid_json", "malformed JSON: 400")
    e = expect_status(openai.BadRequestError, 400, lambda: c.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], temperature="warm"))
    check(e.body["param"] == "temperature" and "temperature" in e.body["message"], "wrong type names the field")
    e = expect_status(openai.BadRequestError, 400, lambda: c.chat.completions.create(
        model="m", messages=[{"role": "robot", "content": "hi"}]))
    check(e.body["param"] == "messages[0].role", f"bad role names the field: {e.body['message']}")
    e = expect_status(openai.BadRequestError, 400, lambda: c.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], n=2))
    check(e.body["param"] == "n", "n = 2 refused")

    e = expect_status(openai.BadRequestError, 400, lambda: c.completions.create(
        model="m", prompt="hello " * 400, max_tokens=4))
    numbers = re.findall(r"\d+", e.body["message"])
    check(e.body["code"] == "context_length_exceeded" and "256" in numbers and int(numbers[0]) > 256,
          f"prompt over the context: {e.body['message']}")

    # max_tokens of 10^9 is clamped to the context: the answer ends when it is full.
    r = c.completions.create(model="m", prompt="1, 2, 3, 4,", max_tokens=10**9, temperature=0)
    u = r.usage
    check(r.choices[0].finish_reason == "length" and u.prompt_tokens + u.completion_tokens == 256 + 1,
          f"max_tokens 1e9: ends with the context ({u.prompt_tokens} + {u.completion_tokens})")

    # A client that sends half a request and goes silent is dropped after --timeout (2 s).
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    s.settimeout(15)
    t0 = time.time()
    try:
        data = s.recv(4096)
        while data and not data.endswith(b"}"):  # an error answer may come before the close
            more = s.recv(4096)
            if not more:
                break
            data += more
        rest = s.recv(4096)
    except ConnectionResetError:
        rest = b""
    s.close()
    check(rest == b"" and time.time() - t0 < 10, f"a silent client is dropped after {time.time() - t0:.1f} s")
    still_serving(c)


# ---------------------------------------------------------------------------------------------
KILLED_CLIENT = r"""
import sys, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key="none", max_retries=0)
for ch in c.completions.create(model="m", prompt="1, 2, 3, 4,", max_tokens=100000, temperature=0, stream=True):
    print("chunk", flush=True)
"""


def disconnect(srv):
    # --parallel 1 --queue 0: one request at a time, none waiting.
    c = srv.client()
    killed = subprocess.Popen([sys.executable, "-c", KILLED_CLIENT, f"http://127.0.0.1:{srv.port}/v1"],
                              stdout=subprocess.PIPE, text=True)
    for _ in range(5):
        check(killed.stdout.readline().startswith("chunk"), "the streaming client receives chunks")
    e = expect_status(openai.APIStatusError, 503, lambda: c.completions.create(model="m", prompt="hi", max_tokens=2))
    check(e.response.headers.get("retry-after") == "1", "503 carries Retry-After")
    m = srv.metrics()
    check(m["plumb_slots_busy"] == 1 and m["plumb_requests_cancelled_total"] == 0, "the slot is busy")
    killed.kill()
    killed.wait()
    t0 = time.time()
    while time.time() - t0 < 10:
        m = srv.metrics()
        if m["plumb_slots_busy"] == 0:
            break
        time.sleep(0.05)
    freed = time.time() - t0
    check(m["plumb_slots_busy"] == 0 and m["plumb_requests_cancelled_total"] == 1,
          f"the killed client's slot is freed ({freed:.2f} s) and counted as cancelled")
    check(freed < 3, "freed at once, not at the end of its 100000 tokens")
    still_serving(c)


# ---------------------------------------------------------------------------------------------
def invariance_requests():
    """16 requests: chat and completion, greedy and seeded, prompts of 5 to ~300 tokens."""
    topics = ["the sea", "a red bicycle", "mountains in winter", "a lost key", "the moon", "bread", "a library",
              "trains", "a small dog", "rain in the city", "chess", "a lighthouse", "tea", "a violin", "snow", "bees"]
    reqs = []
    for i, topic in enumerate(topics):
        long_context = " ".join(f"Note {k}: {topic} is worth a sentence." for k in range(i * 3))
        sampling = {"temperature": 0} if i % 2 == 0 else {"temperature": 0.9, "seed": 1000 + i, "top_p": 0.9}
        common = dict(model="m", max_tokens=8 + (i * 5) % 30, logprobs=True, **sampling)
        if i % 3 == 0:
            reqs.append(("completion", dict(prompt=f"{long_context}\nA story about {topic}:", **common,
                                            stream=i % 4 == 0)))
            reqs[-1][1]["logprobs"] = 2
        else:
            reqs.append(("chat", dict(messages=[{"role": "user", "content": f"{long_context}\nTell me about {topic}."}],
                                      top_logprobs=2, stream=i % 4 == 1, **common)))
    return reqs


def run_request(client, kind, kw):
    """(tokens, logprobs, top logprobs, text): exactly what came back."""
    if kind == "chat":
        if kw.get("stream"):
            items, text = [], ""
            for ch in client.chat.completions.create(**kw):
                if ch.choices and ch.choices[0].logprobs:
                    items += ch.choices[0].logprobs.content
                if ch.choices:
                    text += ch.choices[0].delta.content or ""
        else:
            r = client.chat.completions.create(**kw)
            items, text = r.choices[0].logprobs.content, r.choices[0].message.content
        return ([(t.token, tuple(t.bytes)) for t in items], [t.logprob for t in items],
                [[(a.token, a.logprob) for a in t.top_logprobs] for t in items], text)
    if kw.get("stream"):
        toks, lps, tops, text = [], [], [], ""
        for ch in client.completions.create(**kw):
            lp = ch.choices[0].logprobs
            if lp:
                toks += lp.tokens
                lps += lp.token_logprobs
                tops += lp.top_logprobs
            text += ch.choices[0].text
    else:
        r = client.completions.create(**kw)
        lp = r.choices[0].logprobs
        toks, lps, tops, text = lp.tokens, lp.token_logprobs, lp.top_logprobs, r.choices[0].text
    return (toks, lps, [sorted(t.items()) for t in tops], text)


def invariance(srv):
    c = srv.client()
    reqs = invariance_requests()
    alone = [run_request(c, kind, kw) for kind, kw in reqs]
    check(all(len(a[0]) > 0 for a in alone), "every request alone produced tokens")
    check(srv.metrics()["plumb_step_generated_max"] == 1, "alone: one slot decoding per pass")
    for round_ in range(2):
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(reqs)) as pool:
            order = list(range(len(reqs))) if round_ == 0 else list(reversed(range(len(reqs))))
            futures = {i: pool.submit(run_request, c, *reqs[i]) for i in order}
            together = {i: f.result() for i, f in futures.items()}
        for i in range(len(reqs)):
            a, t = alone[i], together[i]
            check(a[0] == t[0], f"request {i}: the same {len(a[0])} tokens among 16 (round {round_})")
            check(a[1] == t[1] and a[2] == t[2], f"request {i}: bit-identical logprobs (round {round_})")
            check(a[3] == t[3], f"request {i}: the same text")
    m = srv.metrics()
    check(m["plumb_slots_total"] == 16, "16 slots")
    # Together, the slots decoded in the same forward passes (SessionGroup's fused step).
    check(m["plumb_step_generated_max"] >= 8, f"{m['plumb_step_generated_max']:.0f} slots decoding in one pass")


def prefix(srv):
    """A slot keeps its last prompt's cache: a request that begins with whole chunks of it starts
    after them, with the bits it gets in a slot whose cache shares nothing with it."""
    c = srv.client()
    system = " ".join(f"Rule {k}: answer in plain words about item {k}." for k in range(30))  # ~400 tokens
    questions = ["What is the capital of France?", "Name a colour.", "Count to three.", "Say hello."]
    reqs = []
    for i, q in enumerate(questions):
        sampling = {"temperature": 0} if i % 2 == 0 else {"temperature": 0.9, "seed": 7 + i}
        reqs.append(("chat", dict(model="m", max_tokens=12, logprobs=True, top_logprobs=2, stream=i == 1,
                                  messages=[{"role": "system", "content": system}, {"role": "user", "content": q}],
                                  **sampling)))
    other = ("completion", dict(model="m", prompt="Unrelated text to fill the slot.", max_tokens=2, logprobs=1))
    fresh, reused = [], []
    for kind, kw in reqs:  # each after a prompt it shares nothing with
        run_request(c, *other)
        before = srv.metrics()["plumb_prompt_tokens_reused_total"]
        fresh.append(run_request(c, kind, kw))
        check(srv.metrics()["plumb_prompt_tokens_reused_total"] == before, "after an unrelated prompt: nothing reused")
    for i, (kind, kw) in enumerate(reqs):  # each after the one before it: the system prompt's chunks
        run_request(c, *reqs[i - 1])
        before = srv.metrics()["plumb_prompt_tokens_reused_total"]
        reused.append(run_request(c, kind, kw))
        got = srv.metrics()["plumb_prompt_tokens_reused_total"] - before
        check(got >= 320, f"request {i}: {got:.0f} prompt tokens reused from the slot's cache")
    for i in range(len(reqs)):
        a, b = fresh[i], reused[i]
        check(len(a[0]) > 0 and a[0] == b[0], f"request {i}: the same {len(a[0])} tokens with the cache reused")
        check(a[1] == b[1] and a[2] == b[2], f"request {i}: bit-identical logprobs with the cache reused")


def slots(srv):
    """Two slots: a request goes to the free slot whose cache shares the longest prefix with it,
    and a prompt that shares nothing to the one that caches least (an empty one first)."""
    c = srv.client()
    system = " ".join(f"Rule {k}: answer in plain words about item {k}." for k in range(30))  # ~400 tokens
    ask = lambda q: ("chat", dict(model="m", max_tokens=4, temperature=0, logprobs=True,
                                  messages=[{"role": "system", "content": system}, {"role": "user", "content": q}]))
    run_request(c, "completion", dict(model="m", prompt="Unrelated text to fill a slot.", max_tokens=2, logprobs=1))  # slot 0
    run_request(c, *ask("Name a colour."))  # shares nothing with slot 0: the empty slot 1
    run_request(c, "completion", dict(model="m", prompt="Unrelated text again.", max_tokens=2, logprobs=1))  # slot 0 again
    before = srv.metrics()["plumb_prompt_tokens_reused_total"]
    run_request(c, *ask("Say hello."))  # slot 1, the second free one, holds the system prompt
    got = srv.metrics()["plumb_prompt_tokens_reused_total"] - before
    check(got >= 320, f"{got:.0f} prompt tokens reused from the slot that holds the system prompt")


# ---------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--plumb", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("section", choices=["basics", "errors", "disconnect", "invariance", "prefix", "slots"])
    a = ap.parse_args()
    key = "test-key-" + os.urandom(8).hex()
    args = {
        "basics": ["--parallel", "2", "-c", "1024"],
        "errors": ["--parallel", "2", "-c", "256", "--api-key", key, "--timeout", "2"],
        "disconnect": ["--parallel", "1", "--queue", "0", "-c", "4096"],
        "invariance": ["--parallel", "16", "-c", "1024"],
        "prefix": ["--parallel", "1", "-c", "1024"],
        "slots": ["--parallel", "2", "-c", "1024"],
    }[a.section]
    # The backend of the model-level tests (cuda on a GPU machine: docs/GPU-TESTS.md).
    args += ["--backend", os.environ.get("PLUMB_TEST_BACKEND") or "cpu"]
    srv = Server(a.plumb, a.model, *args)
    try:
        if a.section == "errors":
            errors(srv, key)
        else:
            globals()[a.section](srv)
    except BaseException:
        print("".join(srv.log[-40:]), file=sys.stderr)
        srv.proc.kill()
        raise
    srv.stop()
    print(f"{a.section}: passed")


if __name__ == "__main__":
    main()
