// detect operator console: one WebSocket feed in, operator outcomes out. No external files.
"use strict";
const $ = (id) => document.getElementById(id);
const S = window.consoleState = { lastGprAt: null, needed: [], head: null, epoch: 0, threshold: null, scores: [], alarms: new Map(), sensors: {},
            nc: [], pending: [], lo: null, hi: null, track: [], gates: [], ws: null, end: false };
const OUTCOMES = [["mine", "Mine"], ["clutter", "Clutter"], ["nothing_found", "Nothing found"],
                  ["not_checked", "Not checked"]];
const fmt = (x, d = 2) => (x === null || x === undefined || !isFinite(x)) ? "-" : Number(x).toFixed(d);

// ---------------------------------------------------------------- sound (Web Audio)
const A = { ctx: null, master: null, metal: null, radar: null, muted: false, vol: 0.6,
            gain: { metal: 0, radar: 0 }, changedAt: { metal: 0, radar: 0 } };
// each sensor's tone: which oscillator, and the pitch range its level maps onto
const TONES = { emi: ["metal", 300, 1500], gpr: ["radar", 110, 440] };
// read-only, for tests and support: what the tones are set to play (target gain before the
// master volume; 0 = silent) and when that last changed (performance.now() ms)
Object.defineProperty(window, "__detectAudio", { get: () => Object.freeze({
  on: !!A.ctx, muted: A.muted, volume: A.vol, gain: Object.freeze({ ...A.gain }),
  changedAt: Object.freeze({ ...A.changedAt }) }) });
function soundOn() {
  if (A.ctx) return;
  const ctx = new (window.AudioContext || window.webkitAudioContext)();
  A.ctx = ctx; A.master = ctx.createGain(); A.master.connect(ctx.destination);
  const tone = (type) => { const o = ctx.createOscillator(), g = ctx.createGain();
    o.type = type; o.frequency.value = 200; g.gain.value = 0; o.connect(g); g.connect(A.master);
    o.start(); return { o, g }; };
  A.metal = tone("sine");      // metal: smooth sine, 300-1500 Hz
  A.radar = tone("square");    // radar: buzzy square, 110-440 Hz
  setVolume();
}
function setVolume() {
  if (!A.ctx) return;
  A.master.gain.setTargetAtTime(A.muted ? 0 : A.vol, A.ctx.currentTime, 0.02);
}
// a sensor's tone follows its level; silent while it is in FAULT (its last pitch must not
// keep playing as if the sensor were live: an unplugged sensor sends no more levels)
function toneFollow(sensor, level, on) {
  const [name, f0, f1] = TONES[sensor] || [];
  const t = A[name];
  if (!A.ctx || !t) return;
  const x = Math.max(0, Math.min(1, Math.log2(1 + Math.max(0, level || 0)) / 3));
  const now = A.ctx.currentTime, gain = on ? 0.08 + 0.25 * x : 0;
  t.o.frequency.setTargetAtTime(f0 + (f1 - f0) * x, now, 0.03);
  t.g.gain.setTargetAtTime(gain, now, 0.05);
  if (gain !== A.gain[name]) { A.gain[name] = gain; A.changedAt[name] = performance.now(); }
}
const toneOff = (sensor) => toneFollow(sensor, 0, false);
function beeps(freqs, dur, type) {
  if (!A.ctx) return;
  let t = A.ctx.currentTime;
  for (const f of freqs) {
    const o = A.ctx.createOscillator(), g = A.ctx.createGain();
    o.type = type; o.frequency.value = f; g.gain.value = 0.6; o.connect(g); g.connect(A.master);
    o.start(t); o.stop(t + dur); t += dur + 0.03;
  }
}
const alarmSound = () => beeps([1400, 1000, 1400, 1000, 1400], 0.12, "sawtooth");
const suspectSound = () => beeps([660], 0.08, "sine");            // one soft blip: below the operating point
const cueSound = () => beeps([880, 1320], 0.05, "triangle");       // quick rising chirp: look here
const faultSound = () => beeps([300, 200, 300, 200, 300, 200], 0.25, "square");
$("sound-btn").onclick = () => { soundOn(); if (A.ctx.state === "suspended") A.ctx.resume();
  $("sound-btn").classList.add("on"); $("sound-btn").textContent = "Sound is ON"; };
$("mute-btn").onclick = () => { A.muted = !A.muted; setVolume();
  $("mute-btn").classList.toggle("on", A.muted); $("mute-btn").textContent = A.muted ? "MUTED" : "Mute"; };
$("volume").oninput = (e) => { A.vol = e.target.value / 100; setVolume(); };

// ---------------------------------------------------------------- drawing
function waterfall(m) {
  const c = $("waterfall"), ctx = c.getContext("2d");
  const raw = atob(m.data), n = m.n, rows = m.rows;
  const img = ctx.createImageData(n, c.height), sy = rows / c.height;
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < c.height; y++) {
      let v = raw.charCodeAt(i * rows + Math.floor(y * sy)); if (v > 127) v -= 256;
      const g = 128 + v, p = (y * n + i) * 4;  // grey: white = positive, black = negative
      img.data[p] = img.data[p + 1] = img.data[p + 2] = g; img.data[p + 3] = 255;
    }
  }
  ctx.drawImage(c, -n, 0);
  ctx.putImageData(img, c.width - n, 0);
  c.dataset.columns = String(Number(c.dataset.columns) + n);
  $("gpr-cols").textContent = "at " + fmt(m.position_m) + " m";
}
function drawGates() {
  const c = $("gates"), ctx = c.getContext("2d"), g = S.gates;
  ctx.clearRect(0, 0, c.width, c.height);
  if (!g.length) return;
  const w = c.width / g.length, top = Math.max(4, ...g.map(Math.abs));
  for (let i = 0; i < g.length; i++) {
    const h = Math.min(1, Math.abs(g[i]) / top) * (c.height - 10);
    ctx.fillStyle = "#005a9c"; ctx.fillRect(i * w + 3, c.height - h, w - 6, h);
  }
}
function drawScore() {
  const c = $("score"), ctx = c.getContext("2d");
  ctx.clearRect(0, 0, c.width, c.height);
  const y = (p) => c.height - 4 - p * (c.height - 8);
  if (S.threshold !== null) {
    ctx.strokeStyle = "#c00000"; ctx.lineWidth = 3; ctx.setLineDash([10, 6]);
    ctx.beginPath(); ctx.moveTo(0, y(S.threshold)); ctx.lineTo(c.width, y(S.threshold)); ctx.stroke();
    ctx.setLineDash([]);
  }
  if (S.head === null) return;  // score against position, on the lane view's scale
  const span = 12, x0 = S.head - span * 0.75, X = (m) => (m - x0) / span * c.width;
  ctx.strokeStyle = "#000"; ctx.lineWidth = 3; ctx.beginPath();
  let prev = null;
  for (const [pos, p] of S.scores) {
    if (prev === null || Math.abs(pos - prev) > 0.2) ctx.moveTo(X(pos), y(p)); else ctx.lineTo(X(pos), y(p));
    prev = pos;
  }
  ctx.stroke();
}
function drawPlan() {
  const c = $("plan"), ctx = c.getContext("2d");
  ctx.clearRect(0, 0, c.width, c.height);
  if (S.head === null) return;
  const span = 12, x0 = S.head - span * 0.75, X = (m) => (m - x0) / span * c.width;
  const lane = [60, 110];
  if (S.lo !== null) {  // passed ground: covered unless pending / not covered below
    ctx.fillStyle = "#0a6b1f"; ctx.fillRect(X(S.lo), lane[0], X(S.hi) - X(S.lo), lane[1] - lane[0]);
  }
  ctx.fillStyle = "#9a9a9a";
  for (const [a, b] of S.pending) ctx.fillRect(X(a), lane[0], X(b) - X(a), lane[1] - lane[0]);
  ctx.fillStyle = "#c00000";
  for (const [a, b] of S.nc) ctx.fillRect(X(a), lane[0], Math.max(2, X(b) - X(a)), lane[1] - lane[0]);
  ctx.fillStyle = "#000"; ctx.font = "14px sans-serif";
  for (let m = Math.ceil(x0); m < x0 + span; m++) { ctx.fillRect(X(m), lane[1], 2, 8); ctx.fillText(m + "", X(m) + 3, lane[1] + 22); }
  for (const a of S.alarms.values()) {
    if (a.epoch !== S.epoch) continue;
    ctx.fillStyle = a.outcome ? "#666" : (a.tier === "suspect" ? "#8a6d9e" : "#b0006e");
    ctx.beginPath(); ctx.arc(X(a.position_m), 85, a.tier === "suspect" ? 7 : 12, 0, 2 * Math.PI); ctx.fill();
    ctx.fillStyle = "#000"; ctx.fillText(a.num, X(a.position_m) - 6, 50);
  }
  ctx.fillStyle = "#000"; ctx.beginPath();  // the head
  ctx.moveTo(X(S.head), lane[0] - 4); ctx.lineTo(X(S.head) - 12, 20); ctx.lineTo(X(S.head) + 12, 20); ctx.fill();
  ctx.fillText("head", X(S.head) + 16, 28);
  if (S.track.length > 1) {  // GPS track, local metres, top-left inset
    const xs = S.track.map((p) => p[0]), ys = S.track.map((p) => p[1]);
    const mx = Math.min(...xs), my = Math.min(...ys);
    const k = 45 / Math.max(1, Math.max(...xs) - mx, Math.max(...ys) - my);
    ctx.strokeStyle = "#005a9c"; ctx.lineWidth = 2; ctx.beginPath();
    S.track.forEach((p, i) => { const u = 4 + (p[0] - mx) * k, v = 50 - (p[1] - my) * k;
      i ? ctx.lineTo(u, v) : ctx.moveTo(u, v); });
    ctx.stroke();
  }
}

// ---------------------------------------------------------------- state
function where(a) {
  if (S.head === null || a.epoch !== S.epoch) return "position " + fmt(a.position_m) + " m";
  const d = S.head - a.position_m;
  return Math.abs(d) < 0.05 ? "under the head" : fmt(Math.abs(d), 1) + " m " + (d > 0 ? "behind you" : "ahead of you");
}
function alarmRow(a) {
  let li = $("alarm-" + a.id);
  if (!li) {
    li = document.createElement("li"); li.id = "alarm-" + a.id; li.className = "new";
    li.innerHTML = '<div class="where"></div><div class="what"></div><div class="acts"></div>';
    for (const [o, label] of OUTCOMES) {
      const b = document.createElement("button"); b.type = "button"; b.textContent = label;
      b.dataset.outcome = o; b.onclick = () => ack(a.id, o); li.querySelector(".acts").appendChild(b);
    }
    $("alarms").prepend(li);
  }
  const p = a.class_probs || {}, cls = a["class"];
  const certain = a.class_certain === undefined ? (p[cls] || 0) >= 0.5 : a.class_certain;
  const clsTxt = !cls ? "no class (uncalibrated)" : (certain ? cls.replace("_", " ") : "class uncertain");
  li.classList.toggle("suspect", a.tier === "suspect"); li.dataset.tier = a.tier || "alarm";
  li.querySelector(".where").textContent = (a.tier === "suspect" ? "suspect " : "") + "#" + a.num + "  " + where(a);
  li.querySelector(".what").textContent = "conf " + fmt(a.confidence) + ", " + clsTxt + ", depth " +
    (a.depth_m === null ? "?" : Math.round(a.depth_m * 100) + " cm") + ", " + (a.utc ? a.utc.slice(11, 19) + " UTC" : "no UTC") +
    (a.outcome ? "  -> " + a.outcome.replace("_", " ").toUpperCase() : "");
  li.classList.toggle("done", !!a.outcome); if (a.outcome) li.classList.remove("new");
}
function addAlarm(a, quiet) {
  a.num = a.id.split("-").pop(); a.epoch = a.epoch || 0; a.tier = a.tier || "alarm";
  S.alarms.set(a.id, a); alarmRow(a);
  const n = [...S.alarms.values()].filter((x) => x.tier === "alarm").length;
  $("n-alarms").textContent = "(" + n + (S.alarms.size > n ? ", suspects " + (S.alarms.size - n) : "") + ")";
  if (!quiet) (a.tier === "suspect" ? suspectSound : alarmSound)();
}
function showCue(m) {  // a hint from the raw signals, before the alarm logic decides: never an alarm
  const c = $("cue-line");
  c.hidden = false; c.dataset.count = String(Number(c.dataset.count || 0) + 1);
  c.textContent = "CUE: " + m.sensor.toUpperCase() + " signal at " + fmt(m.position_m) + " m (" + fmt(m.ratio, 0) + "x background) - check here";
  cueSound(); clearTimeout(S.cueTimer); S.cueTimer = setTimeout(() => { c.hidden = true; }, 4000);
}
function ack(id, outcome) {
  if (S.ws && S.ws.readyState === 1) S.ws.send(JSON.stringify({ type: "ack", id, outcome }));
}
function setTile(sensor, state, reason, rate) {
  let t = $("tile-" + sensor);
  if (!t) { t = document.createElement("div"); t.id = "tile-" + sensor; t.className = "tile"; $("tiles").appendChild(t); }
  const was = t.dataset.state; t.dataset.state = state;
  t.innerHTML = "<b>" + sensor.toUpperCase() + " " + state + "</b>" + (reason || "") + (rate !== undefined ? " " + fmt(rate, 0) + "/s" : "");
  if (state === "FAULT" && was !== "FAULT") { t.dataset.faultAt = String(performance.now()); faultSound(); }
}
function message(text, loud) {
  const li = document.createElement("li"); li.textContent = text; if (loud) li.className = "loud";
  $("messages").prepend(li); while ($("messages").children.length > 30) $("messages").lastChild.remove();
}
function onStatus(m) {
  S.needed = m.needed || []; S.head = m.head_m; S.threshold = m.threshold; S.nc = m.not_covered || []; S.pending = m.pending || [];
  if (m.head_m !== null) { S.lo = S.lo === null ? m.head_m : Math.min(S.lo, m.head_m); S.hi = S.hi === null ? m.head_m : Math.max(S.hi, m.head_m); }
  if (m.p_mine !== null && m.p_position_m !== null) {
    const last = S.scores[S.scores.length - 1];
    if (!last || last[0] !== m.p_position_m) S.scores.push([m.p_position_m, m.p_mine]);
    if (S.scores.length > 600) S.scores.shift();
  }
  for (const s of m.sensors) {
    setTile(s.sensor, s.state, s.reason, s.rate_hz); S.sensors[s.sensor] = s.state;
    if (s.state === "FAULT") toneOff(s.sensor);
  }
  const f = $("fault-banner");
  f.hidden = !m.faults.length;
  if (m.faults.length) f.textContent = "SENSOR FAULT: " + m.faults.join(", ").toUpperCase() + " - GROUND NOW PASSED IS NOT COVERED - STOP";
  $("rec-banner").hidden = m.recording_ok; $("rec-banner").textContent = "RECORDING STOPPED: " + m.recording;
  $("head-line").textContent = (m.source || "") + "  |  head " + fmt(m.head_m) + " m  |  " + fmt(m.speed_m_s) +
    " m/s  |  GPS " + m.gps + "  |  rec " + m.recording + "  |  " + new Date().toISOString().slice(11, 19) + " UTC";
  $("score-txt").textContent = fmt(m.p_mine); $("thr-txt").textContent = fmt(m.threshold);
  $("cov-txt").textContent = fmt(m.distance_m, 1) + " m passed, NOT COVERED " + fmt(m.not_covered_m) + " m, pending " +
    fmt(S.pending.reduce((t, [a, b]) => t + b - a, 0)) + " m";
  for (const a of S.alarms.values()) alarmRow(a);
  drawScore(); drawPlan();
}
function handle(m) {
  switch (m.type) {
    case "snapshot":
      S.track = m.track || [];
      for (const a of m.alarms) { const o = m.outcomes[a.id]; if (o) a.outcome = o.outcome; addAlarm(a, true); }
      break;
    case "status": onStatus(m); break;
    case "gpr": S.lastGprAt = performance.now(); if (m.data) waterfall(m); toneFollow("gpr", m.level, S.sensors.gpr !== "FAULT"); break;
    case "emi": S.gates = m.gates; drawGates(); toneFollow("emi", m.level, S.sensors.emi !== "FAULT"); break;
    case "alarm": addAlarm(m.alarm, false); break;
    case "cue": showCue(m); break;
    case "health":
      setTile(m.sensor, m.state, m.reason); S.sensors[m.sensor] = m.state;
      if (m.state === "FAULT") toneOff(m.sensor);  // back with its next level once not FAULT
      if (m.state === "FAULT" && S.needed.includes(m.sensor)) {  // at once, not at the next status
        const f = $("fault-banner"); f.hidden = false;
        f.textContent = "SENSOR FAULT: " + m.sensor.toUpperCase() + " - GROUND NOW PASSED IS NOT COVERED - STOP";
      }
      break;
    case "track": S.track.push([m.x_m, m.y_m]); if (S.track.length > 4000) S.track.shift(); break;
    case "outcome": case "ack_ok": { const a = S.alarms.get(m.id); if (a) { a.outcome = m.outcome; alarmRow(a); } break; }
    case "ack_error": message("NOT SAVED: " + m.error, true); break;
    case "message": message(m.text, m.loud); break;
    case "end": S.end = true; message("run ended", true); toneOff("emi"); toneOff("gpr"); break;
  }
}
function connect() {
  const tok = new URLSearchParams(location.search).get("token");
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws" + (tok ? "?token=" + encodeURIComponent(tok) : ""));
  S.ws = ws;
  ws.onopen = () => { $("conn-banner").hidden = true; };
  ws.onmessage = (e) => { const d = JSON.parse(e.data); (Array.isArray(d) ? d : [d]).forEach(handle); };
  ws.onclose = () => { if (!S.end) { $("conn-banner").hidden = false; setTimeout(connect, 1000); } };
}
connect();
