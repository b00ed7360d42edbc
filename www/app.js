// app.js - the lark demo chat page (index.html).
//
// Log in as a name with a development token, then chat: conversations,
// history with scroll-back, sending, pictures and files (the paperclip or
// drag and drop; pictures shown inline, scaled by the browser, other files
// as download chips), delivered/read ticks, typing, presence dots and the
// transport in use. Everything real-time comes from lark.js; this file is
// plain DOM code around one state object.
//
// ?transport=ws|sse|poll|auto in the address overrides the log-in choice.

import { connect, newId } from './lark.js';

const SESSION_KEY = 'lark.demo.session';
const PAGE = 30; // messages per history page
const TYPING_SHOW_MS = 4000; // a typing notice shows this long
const NEAR_TOP_PX = 40; // scrolled this close to the top: load older messages
const MEDIA_PER_MESSAGE = 10; // API.md: a message carries 1-10 media
// Shown inline (API.md: raster images; never SVG, which is a document)
const RASTER = /^image\/(png|jpeg|gif|webp|avif|bmp|apng)(;|$)/;

const $ = (sel) => document.querySelector(sel);

/** Make an element: h('li', {className: 'x'}, child, 'text', ...). */
function h(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'dataset') Object.assign(e.dataset, v);
    else if (v !== undefined && v !== null) e[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}

const app = {
  me: null, // my user id
  token: null,
  lark: null, // the lark.js client
  convs: new Map(), // conversation id -> the API's conversation object
  fetching: new Map(), // conversation id -> Promise of its details
  current: null, // conversation id, or {to} for a direct chat not started yet
  msgs: new Map(), // conversation id -> {bySeq: Map(seq -> message), hasMore, loaded, loading}
  pending: [], // my sends not stored yet: {client_msg_id, conv, to, body, failed}
  receipts: new Map(), // conversation id -> {delivered, read}: highest seqs others reached
  myRead: new Map(), // conversation id -> the seq I reported read
  presence: new Map(), // user -> {status, last_seen}
  typing: new Map(), // conversation id -> Map(user -> timer)
  watched: '', // the viewport last sent, as a key
  mediaUrls: new Map(), // media id -> Promise of an object URL of its bytes
};
window.larkDemo = app; // for the curious (and the browser tests)

// ---- log-in ------------------------------------------------------------------

async function devToken(user) {
  const res = await fetch('/v1/dev/token', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ user }),
  });
  const body = await res.json().catch(() => null);
  if (res.status === 404) throw new Error('Development tokens are off on this server (see docs/OPERATIONS.md).');
  if (!res.ok) throw new Error(body && body.error ? body.error.message : `The server answered ${res.status}.`);
  return body.token;
}

function saveSession(s) {
  localStorage.setItem(SESSION_KEY, JSON.stringify(s));
}

function loadSession() {
  try {
    return JSON.parse(localStorage.getItem(SESSION_KEY) || 'null');
  } catch {
    return null;
  }
}

$('#login').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = e.target;
  const user = form.user.value.trim();
  $('#login-error').textContent = '';
  form.querySelector('button').disabled = true;
  try {
    const token = await devToken(user);
    const session = { user, token, transport: form.transport.value };
    saveSession(session);
    start(session);
  } catch (err) {
    $('#login-error').textContent = err.message;
  } finally {
    form.querySelector('button').disabled = false;
  }
});

$('#logout').addEventListener('click', () => {
  if (app.lark) app.lark.close();
  localStorage.removeItem(SESSION_KEY);
  location.reload();
});

function start(session) {
  const forced = new URLSearchParams(location.search).get('transport');
  app.me = session.user;
  app.token = session.token;
  $('#login-view').hidden = true;
  $('#chat-view').hidden = false;
  $('#me').textContent = app.me;
  document.title = `${app.me} · lark`;
  app.lark = connect({
    transport: forced || session.transport || 'auto',
    // Asked again with refresh = true when the server refuses the token.
    token: async (refresh) => {
      if (refresh) {
        app.token = await devToken(app.me);
        saveSession({ ...session, token: app.token });
      }
      return app.token;
    },
    onEvent,
    onStatus: showStatus,
  });
  loadConversations();
}

// ---- connection status -----------------------------------------------------------

const TRANSPORT_NAMES = { ws: 'WebSocket', sse: 'SSE', poll: 'long-poll' };

function showStatus(st) {
  const el = $('#status');
  const name = TRANSPORT_NAMES[st.transport] || st.transport;
  el.dataset.state = st.state;
  el.dataset.transport = st.transport;
  el.textContent = {
    connecting: `connecting (${name})…`,
    open: `● ${name}`,
    reconnecting: st.delay !== undefined
      ? `reconnecting (${name}) in ${(st.delay / 1000).toFixed(1)} s…` : `reconnecting (${name})…`,
    unauthorized: 'logged out: log in again',
    closed: 'closed',
  }[st.state] || st.state;
  el.title = st.error ? `${st.state}: ${st.error}` : `${st.state} over ${name}`;
  if (st.state === 'open') loadConversations(); // catch up on anything missed while away
}

// ---- conversations -------------------------------------------------------------

/** The name to show for a conversation. */
function convName(c) {
  if (c.type === 'group') return c.title || others(c).join(', ') || 'group';
  return others(c)[0] || `${app.me} (notes)`;
}

function others(c) {
  return (c.members || []).map((m) => m.user).filter((u) => u !== app.me);
}

/** The other member of a direct chat, or null. */
function peer(c) {
  return c.type === 'direct' ? others(c)[0] || null : null;
}

function activity(c) {
  return Date.parse((c.last_message && c.last_message.created_at) || c.created_at || 0) || 0;
}

function addConv(c) {
  const had = app.convs.get(c.id);
  // Keep what events told us that a list answer may not have yet.
  if (had && had.last_seq > (c.last_seq || 0)) {
    c.last_seq = had.last_seq;
    c.last_message = had.last_message;
    c.unread = had.unread;
  }
  // Read here and now, whatever an answer sent before the read says.
  if (app.current === c.id && document.visibilityState === 'visible') c.unread = 0;
  app.convs.set(c.id, c);
  if (c.members && c.members.some((m) => m.read_seq !== undefined)) {
    const r = receiptsOf(c.id);
    for (const m of c.members) {
      if (m.user === app.me) continue;
      r.delivered = Math.max(r.delivered, m.delivered_seq || 0, m.read_seq || 0);
      r.read = Math.max(r.read, m.read_seq || 0);
    }
  }
  return c;
}

async function loadConversations() {
  if (!app.lark) return;
  try {
    const r = await app.lark.request('GET', '/v1/conversations?limit=200');
    for (const c of r.conversations) addConv(c);
    renderConversations();
    watchPeople();
  } catch (err) {
    console.warn('conversations:', err.message); // retried on the next (re)connect
  }
}

/** The conversation's details, fetched once however many ask. */
function ensureConv(id) {
  if (app.convs.has(id)) return Promise.resolve(app.convs.get(id));
  return refreshConv(id);
}

function refreshConv(id) {
  if (!app.fetching.has(id)) {
    const p = app.lark.request('GET', `/v1/conversations/${encodeURIComponent(id)}`)
      .then((c) => {
        addConv(c);
        renderConversations();
        if (app.current === id) {
          renderHead();
          // the members' read and delivered positions just arrived: the
          // ticks of messages already drawn (history) change with them
          renderMessages();
        }
        watchPeople();
        return c;
      })
      .catch((err) => {
        if (err.code === 'not_member' || err.code === 'not_found') {
          app.convs.delete(id); // we left or were removed
          if (app.current === id) app.current = null;
          renderAll();
        }
        return null;
      })
      .finally(() => app.fetching.delete(id));
    app.fetching.set(id, p);
  }
  return app.fetching.get(id);
}

function renderConversations() {
  const list = [...app.convs.values()].sort((a, b) => activity(b) - activity(a));
  $('#no-conversations').hidden = list.length > 0;
  $('#conversations').replaceChildren(...list.map((c) => {
    const who = peer(c);
    const last = c.last_message;
    const lastText = last ? `${last.sender === app.me ? 'You: ' : ''}${last.body || mediaSummary(last.media)}` : 'No messages yet';
    return h('li', {
      className: c.id === app.current ? 'active' : '',
      dataset: { id: c.id, name: convName(c), ...(who ? { user: who } : {}) },
      onclick: () => openConversation(c.id),
    },
    who ? dot(who) : h('span', { className: 'dot group', title: 'group' }),
    h('span', { className: 'name' }, convName(c)),
    c.unread > 0 ? h('span', { className: 'unread', title: 'unread' }, String(c.unread)) : h('span'),
    h('span', { className: 'last' }, lastText));
  }));
}

function dot(user) {
  const p = app.presence.get(user);
  const status = p ? p.status : 'offline';
  return h('span', { className: 'dot', title: `${user}: ${status}`, dataset: { status, user } });
}

/** Watch everyone I share a conversation with (at most 200). */
function watchPeople() {
  const shared = new Set();
  for (const c of app.convs.values()) for (const u of others(c)) shared.add(u);
  const people = new Set(shared);
  if (app.current && app.current.to) people.add(app.current.to);
  const users = [...people].sort().slice(0, 200);
  // The server shows only the presence of people I share a conversation
  // with (presence_visibility = shared), decided when the watch is set: a
  // draft's peer becomes visible with the chat's first message, and must
  // be watched again then.
  const key = `${users.join(',')}|${users.filter((u) => shared.has(u)).join(',')}`;
  if (key === app.watched) return;
  app.watched = key;
  app.lark.watch(users).catch(() => { app.watched = ''; });
}

$('#new-chat').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = e.target.with;
  const names = [...new Set(input.value.split(/[\s,]+/).filter(Boolean))].filter((n) => n !== app.me);
  if (names.length === 0) return;
  input.value = '';
  if (names.length === 1) {
    // A direct chat exists once its first message is sent; until then it is a draft.
    const existing = [...app.convs.values()].find((c) => peer(c) === names[0]);
    if (existing) return openConversation(existing.id);
    app.current = { to: names[0] };
    watchPeople();
    renderAll();
    $('#composer').body.focus();
    return;
  }
  try {
    const c = await app.lark.request('POST', '/v1/conversations', {
      type: 'group', title: names.concat(app.me).sort().join(', '), members: names,
    });
    addConv(c);
    openConversation(c.id);
    watchPeople();
  } catch (err) {
    alert(`Could not create the group: ${err.message}`);
  }
});

// ---- one conversation -----------------------------------------------------------

function store(id) {
  if (!app.msgs.has(id)) app.msgs.set(id, { bySeq: new Map(), hasMore: true, loaded: false, loading: false });
  return app.msgs.get(id);
}

function receiptsOf(id) {
  if (!app.receipts.has(id)) app.receipts.set(id, { delivered: 0, read: 0 });
  return app.receipts.get(id);
}

async function openConversation(id) {
  app.current = id;
  const c = app.convs.get(id);
  if (c) c.unread = 0;
  renderAll(true);
  $('#composer').body.focus();
  const s = store(id);
  if (!s.loaded) await loadOlder(id);
  refreshConv(id); // members' read and delivered positions, for the ticks
  markRead();
}

/** The next page of history, older than what is shown. */
async function loadOlder(id) {
  const s = store(id);
  if (s.loading || (s.loaded && !s.hasMore)) return;
  s.loading = true;
  const oldest = s.loaded && s.bySeq.size ? Math.min(...s.bySeq.keys()) : null;
  const q = oldest ? `before=${oldest}&limit=${PAGE}` : `limit=${PAGE}`;
  try {
    const r = await app.lark.request('GET', `/v1/conversations/${encodeURIComponent(id)}/messages?${q}`);
    for (const m of r.messages) s.bySeq.set(m.seq, m);
    s.hasMore = r.has_more;
    const first = !s.loaded;
    s.loaded = true;
    if (app.current === id) renderMessages(first ? 'bottom' : 'keep-top');
  } catch (err) {
    console.warn('history:', err.message);
  } finally {
    s.loading = false;
  }
}

/** Fill a gap after seq (messages the stream did not bring, e.g. acknowledged elsewhere). */
async function loadAfter(id, seq) {
  const s = store(id);
  try {
    const r = await app.lark.request('GET', `/v1/conversations/${encodeURIComponent(id)}/messages?after=${seq}&limit=200`);
    for (const m of r.messages) s.bySeq.set(m.seq, m);
    if (app.current === id) renderMessages();
  } catch (err) {
    console.warn('history:', err.message);
  }
}

$('#messages').addEventListener('scroll', (e) => {
  if (typeof app.current === 'string' && e.target.scrollTop < NEAR_TOP_PX) loadOlder(app.current);
});

/** Report the newest message of the open conversation read, if the page is seen. */
function markRead() {
  const id = app.current;
  if (typeof id !== 'string' || document.visibilityState !== 'visible') return;
  const s = store(id);
  const c = app.convs.get(id);
  const newest = Math.max(0, c ? c.last_seq || 0 : 0, ...s.bySeq.keys());
  if (c) c.unread = 0;
  if (newest > (app.myRead.get(id) || 0)) {
    app.myRead.set(id, newest);
    app.lark.read(id, newest).catch(() => app.myRead.delete(id));
  }
}

document.addEventListener('visibilitychange', () => {
  markRead();
  renderConversations();
});

function renderHead() {
  const head = $('#chat-head');
  const cur = app.current;
  if (!cur) {
    head.replaceChildren(h('span', { className: 'muted' }, 'Pick a conversation or start one.'));
    return;
  }
  if (cur.to) {
    head.replaceChildren(dot(cur.to), h('span', { className: 'title' }, cur.to),
      h('span', { className: 'sub' }, 'new chat: say hello'));
    return;
  }
  const c = app.convs.get(cur);
  if (!c) return;
  const who = peer(c);
  const sub = who ? presenceText(who) : `${(c.members || []).length} members`;
  head.replaceChildren(who ? dot(who) : h('span', { className: 'dot group' }),
    h('span', { className: 'title' }, convName(c)), h('span', { className: 'sub' }, sub));
}

function presenceText(user) {
  const p = app.presence.get(user);
  if (p && p.status === 'online') return 'online';
  if (p && p.last_seen) return `last seen ${new Date(p.last_seen).toLocaleString()}`;
  return 'offline';
}

function tickFor(c, m) {
  const r = receiptsOf(c);
  if (m.seq <= r.read) return ['read', '✓✓', 'read'];
  if (m.seq <= r.delivered) return ['delivered', '✓✓', 'delivered'];
  return ['sent', '✓', 'sent'];
}

function time(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

// ---- media ---------------------------------------------------------------------

/** "📷 Photo", "📎 report.pdf", "📎 3 files": a media-only message in one line. */
function mediaSummary(media) {
  if (!media || media.length === 0) return '';
  if (media.every((m) => RASTER.test(m.content_type))) return media.length === 1 ? '📷 Photo' : `📷 ${media.length} photos`;
  return media.length === 1 ? `📎 ${media[0].name}` : `📎 ${media.length} files`;
}

function bytesText(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** An object URL of the item's bytes, fetched once (with the token in a header). */
function mediaUrl(id) {
  if (!app.mediaUrls.has(id)) {
    const p = app.lark.fetchMedia(id).then((blob) => URL.createObjectURL(blob));
    p.catch(() => app.mediaUrls.delete(id)); // try again at the next render
    app.mediaUrls.set(id, p);
  }
  return app.mediaUrls.get(id);
}

/** A picture as a thumbnail (the browser scales it), anything else as a download chip. */
function renderMedia(m) {
  if (RASTER.test(m.content_type)) {
    const img = h('img', { className: 'thumb', alt: m.name, title: m.name, dataset: { media: m.id } });
    mediaUrl(m.id).then((u) => { img.src = u; }, () => { img.alt = `${m.name} (unavailable)`; });
    // a raster image only: a blob of this origin must never be a document
    img.onclick = () => mediaUrl(m.id).then((u) => window.open(u, '_blank', 'noopener'));
    return img;
  }
  const chip = h('a', { className: 'chip', href: '#', title: `Download ${m.name}`, dataset: { media: m.id } },
    h('span', { className: 'chip-icon' }, '📄'), h('span', { className: 'chip-name' }, m.name),
    h('span', { className: 'chip-size' }, bytesText(m.size)));
  chip.onclick = async (e) => {
    e.preventDefault();
    try {
      // download, never open: the bytes may be HTML or SVG
      const a = h('a', { href: await mediaUrl(m.id), download: m.name });
      document.body.append(a);
      a.click();
      a.remove();
    } catch (err) {
      alert(`Could not download ${m.name}: ${err.message}`);
    }
  };
  return chip;
}

function renderMessage(convId, m, group) {
  const mine = m.sender === app.me;
  const [status, ticks, title] = mine ? tickFor(convId, m) : [];
  return h('li', { className: mine ? 'msg mine' : 'msg', dataset: { seq: m.seq, id: m.id, sender: m.sender } },
    group && !mine ? h('span', { className: 'from' }, m.sender) : null,
    m.media && m.media.length ? h('span', { className: 'media' }, ...m.media.map(renderMedia)) : null,
    h('span', { className: 'body' }, m.body),
    h('span', { className: 'meta' }, time(m.created_at),
      mine ? h('span', { className: 'ticks', title, dataset: { status } }, ticks) : null));
}

function renderPending(p) {
  const status = p.failed ? 'failed' : 'pending';
  const text = p.upload ? `${p.upload} — ${p.progress < 100 ? `uploading… ${p.progress}%` : 'sending…'}` : p.body;
  return h('li', { className: 'msg mine', dataset: { pending: p.client_msg_id } },
    h('span', { className: p.upload ? 'body uploading' : 'body' }, text),
    h('span', { className: 'meta' },
      h('span', { className: 'ticks', title: p.failed || 'sending…', dataset: { status } }, p.failed ? '!' : '🕓')));
}

/** mode: 'bottom' (scroll to the end), 'keep-top' (older page added above), or stay. */
function renderMessages(mode) {
  const list = $('#messages');
  const cur = app.current;
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const before = { height: list.scrollHeight, top: list.scrollTop };
  const items = [];
  if (typeof cur === 'string') {
    const c = app.convs.get(cur);
    const s = store(cur);
    const group = c && c.type === 'group';
    if (s.loaded) items.push(h('li', { className: 'edge' }, s.hasMore ? 'Scroll up for older messages' : 'The beginning of this conversation'));
    const seqs = [...s.bySeq.keys()].sort((a, b) => a - b);
    for (const seq of seqs) items.push(renderMessage(cur, s.bySeq.get(seq), group));
  }
  for (const p of app.pending) if (isPendingHere(p)) items.push(renderPending(p));
  list.replaceChildren(...items);
  if (mode === 'keep-top') list.scrollTop = list.scrollHeight - before.height + before.top;
  else if (mode === 'bottom' || atBottom) list.scrollTop = list.scrollHeight;
  // A first page that does not fill the view cannot be scrolled: load more now.
  if (typeof cur === 'string' && list.scrollHeight <= list.clientHeight && store(cur).hasMore && store(cur).loaded)
    loadOlder(cur);
}

function isPendingHere(p) {
  const cur = app.current;
  if (typeof cur === 'string') return p.conv === cur || (p.to && app.convs.get(cur) && peer(app.convs.get(cur)) === p.to);
  return cur && p.to === cur.to;
}

function renderTyping() {
  const t = app.typing.get(app.current);
  const names = t ? [...t.keys()] : [];
  $('#typing').textContent = names.length === 0 ? ''
    : `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…`;
}

function renderAll(toBottom) {
  renderConversations();
  renderHead();
  renderMessages(toBottom ? 'bottom' : undefined);
  renderTyping();
  const ready = Boolean(app.current);
  $('#composer').body.disabled = !ready;
  $('#composer').querySelector('button').disabled = !ready;
  $('#attach').disabled = !ready;
}

// ---- sending -------------------------------------------------------------------

$('#composer').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = e.target.body;
  const body = input.value;
  if (!body.trim() || !app.current) return;
  input.value = '';
  send(body);
});

$('#composer').body.addEventListener('input', () => {
  if (typeof app.current === 'string' && $('#composer').body.value) app.lark.typing(app.current);
});

$('#attach').addEventListener('change', (e) => {
  const files = [...e.target.files];
  e.target.value = '';
  if (files.length && app.current) send('', files);
});

// Drop pictures or files anywhere on the chat.
const chatPane = $('.chat');
chatPane.addEventListener('dragover', (e) => {
  if (!app.current || !e.dataTransfer || ![...e.dataTransfer.types].includes('Files')) return;
  e.preventDefault();
  e.dataTransfer.dropEffect = 'copy';
  chatPane.classList.add('dropping');
});
chatPane.addEventListener('dragleave', (e) => {
  if (!chatPane.contains(e.relatedTarget)) chatPane.classList.remove('dropping');
});
chatPane.addEventListener('drop', (e) => {
  chatPane.classList.remove('dropping');
  const files = e.dataTransfer ? [...e.dataTransfer.files] : [];
  if (!app.current || files.length === 0) return;
  e.preventDefault();
  send('', files);
});

/** Send body, with files uploaded first (at most MEDIA_PER_MESSAGE, one message). */
async function send(body, files = []) {
  const cur = app.current;
  const fields = { body, client_msg_id: newId() };
  if (typeof cur === 'string') fields.conversation_id = cur;
  else fields.to = cur.to;
  files = files.slice(0, MEDIA_PER_MESSAGE);
  // Shown at once with a clock (and the upload's progress); lark.js keeps
  // the send queued while disconnected.
  const p = { client_msg_id: fields.client_msg_id, conv: fields.conversation_id, to: fields.to, body };
  if (files.length) {
    p.upload = files.length === 1 ? files[0].name : `${files.length} files`;
    p.progress = 0;
  }
  app.pending.push(p);
  renderMessages('bottom');
  try {
    if (files.length) fields.media = await uploadAll(files, p);
    const m = await app.lark.send(fields);
    await ensureConv(m.conversation_id);
    app.pending = app.pending.filter((x) => x !== p);
    onMessage(m);
    // The first message of a new direct chat: the chat exists now.
    if (fields.to && app.current && app.current.to === fields.to) openConversation(m.conversation_id);
    else renderAll();
  } catch (err) {
    p.failed = `not sent: ${err.message}`;
    renderMessages();
  }
}

/** Upload files one after the other, showing the progress on p; their ids. */
async function uploadAll(files, p) {
  const total = Math.max(1, files.reduce((n, f) => n + f.size, 0));
  const ids = [];
  let done = 0;
  for (const f of files) {
    const m = await app.lark.upload(f, {
      onProgress: (sent) => {
        p.progress = Math.min(99, Math.floor((100 * (done + sent)) / total));
        renderMessages();
      },
    });
    done += f.size;
    ids.push(m.id);
  }
  p.progress = 100;
  renderMessages();
  return ids;
}

// ---- events from the stream ------------------------------------------------------

function onEvent(ev) {
  switch (ev.type) {
    case 'message': onMessage(ev.data); break;
    case 'receipt': onReceipt(ev.data); break;
    case 'member':
    case 'conversation': refreshConv(ev.data.conversation_id); break;
    case 'typing': onTyping(ev.data); break;
    case 'presence': onPresence(ev.data); break;
    default: break; // a newer server's event: nothing to show
  }
}

function onMessage(m) {
  const c = app.convs.get(m.conversation_id);
  if (!c) {
    ensureConv(m.conversation_id).then((got) => got && onMessage(m));
    return;
  }
  const s = store(m.conversation_id);
  const known = s.bySeq.has(m.seq) || (c.last_seq || 0) >= m.seq;
  const newest = s.bySeq.size ? Math.max(...s.bySeq.keys()) : 0;
  if (s.loaded && newest && m.seq > newest + 1) loadAfter(m.conversation_id, newest);
  s.bySeq.set(m.seq, m);
  if (!c.last_message || m.seq >= c.last_message.seq) c.last_message = m;
  c.last_seq = Math.max(c.last_seq || 0, m.seq);
  app.pending = app.pending.filter((p) => p.client_msg_id !== m.client_msg_id || m.sender !== app.me);
  if (m.sender !== app.me) {
    stopTyping(m.conversation_id, m.sender);
    if (app.current === m.conversation_id && document.visibilityState === 'visible') markRead();
    else if (!known) c.unread = (c.unread || 0) + 1;
  }
  renderConversations();
  if (app.current === m.conversation_id) {
    renderMessages();
    renderTyping();
  }
}

function onReceipt(r) {
  if (r.user === app.me) return; // my own devices' reading
  const rec = receiptsOf(r.conversation_id);
  rec.delivered = Math.max(rec.delivered, r.up_to);
  if (r.status === 'read') rec.read = Math.max(rec.read, r.up_to);
  if (app.current === r.conversation_id) renderMessages();
}

function onTyping(t) {
  if (t.user === app.me) return;
  if (!app.typing.has(t.conversation_id)) app.typing.set(t.conversation_id, new Map());
  const users = app.typing.get(t.conversation_id);
  clearTimeout(users.get(t.user));
  users.set(t.user, setTimeout(() => stopTyping(t.conversation_id, t.user), TYPING_SHOW_MS));
  if (app.current === t.conversation_id) renderTyping();
}

function stopTyping(conv, user) {
  const users = app.typing.get(conv);
  if (!users || !users.has(user)) return;
  clearTimeout(users.get(user));
  users.delete(user);
  if (app.current === conv) renderTyping();
}

function onPresence(p) {
  app.presence.set(p.user, { status: p.status, last_seen: p.last_seen });
  for (const d of document.querySelectorAll('.dot[data-user]')) {
    if (d.dataset.user !== p.user) continue;
    d.dataset.status = p.status;
    d.title = `${p.user}: ${p.status}`;
  }
  renderHead();
}

// ---- start -------------------------------------------------------------------------

const saved = loadSession();
if (saved && saved.user && saved.token) {
  start(saved);
} else {
  $('#login-view').hidden = false;
  const forced = new URLSearchParams(location.search).get('transport');
  if (forced) $('#login').transport.value = forced;
}
