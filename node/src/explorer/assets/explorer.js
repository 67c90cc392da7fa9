// sealchain explorer: checks what a page shows, in the browser.
//
// The server renders every page as plain HTML. This script trusts none of
// it: it fetches the raw objects from the node's JSON API (blocks, messages,
// proofs, the signed checkpoint) and recomputes, with WebCrypto, every hash
// and signature the sealchain protocol defines (PROTOCOL §2 messages, §4
// receipts, §5 Merkle trees, §6 block headers, §9 signed-note checkpoints).
// Signatures are checked against the node key the page names in
// <meta name="sealchain-node-key">, which this browser pins on the first
// visit (localStorage, per site) and compares on every later one.
//
// On the overview it follows GET /v1/events (Server-Sent Events) and
// updates the counts, the newest blocks and the checkpoint as they come.

const te = new TextEncoder();
const td = new TextDecoder('utf-8', { fatal: true });

/** The data is wrong: the check fails, with this explanation. */
class Failure extends Error {}
/** Nothing is wrong yet, but the check cannot be made now. */
class Waiting extends Error {}
/** This browser cannot make the check. */
class Unsupported extends Error {}

const DOMAIN = {
  block: 'sealchain/block/v1\0',
  blockSignature: 'sealchain/block-signature/v1\0',
  message: 'sealchain/message/v1\0',
  receipt: 'sealchain/receipt/v1\0',
};

// ---------------------------------------------------------------- bytes --

function meta(name) {
  const el = document.querySelector(`meta[name="${name}"]`);
  return el ? el.content : null;
}

function fromHex(text, length, what) {
  if (typeof text !== 'string' || text.length !== length * 2 || !/^[0-9a-f]*$/.test(text)) {
    throw new Failure(`${what} is not ${length} bytes of lowercase hex: ${JSON.stringify(text)}`);
  }
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function fromBase64(text, what) {
  let raw;
  try {
    raw = atob(text);
  } catch {
    throw new Failure(`${what} is not base64`);
  }
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

function concat(...parts) {
  const arrays = parts.map((p) => (p instanceof Uint8Array ? p : typeof p === 'string' ? te.encode(p) : Uint8Array.from(p)));
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

function equal(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** An integer of the API as a BigInt (exact, whatever its size). */
function big(v, what) {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  throw new Failure(`${what} is not an integer: ${String(v)}`);
}

function be(bits, signed, value, what) {
  const n = big(value, what);
  const min = signed ? -(1n << BigInt(bits - 1)) : 0n;
  const max = signed ? (1n << BigInt(bits - 1)) - 1n : (1n << BigInt(bits)) - 1n;
  if (n < min || n > max) throw new Failure(`${what} ${n} does not fit ${signed ? 'i' : 'u'}${bits}`);
  const out = new Uint8Array(bits / 8);
  const view = new DataView(out.buffer);
  if (bits === 32) view.setUint32(0, Number(n));
  else if (signed) view.setBigInt64(0, n);
  else view.setBigUint64(0, n);
  return out;
}
const u64be = (v, what) => be(64, false, v, what);
const i64be = (v, what) => be(64, true, v, what);
const u32be = (v, what) => be(32, false, v, what);

/**
 * Parses JSON keeping every integer exact (a BigInt), from its source text
 * where the browser offers it (JSON.parse source text access).
 */
function parseJSON(text) {
  return JSON.parse(text, (key, value, context) => {
    if (typeof value === 'number' && context && typeof context.source === 'string' && /^-?\d+$/.test(context.source)) {
      return BigInt(context.source);
    }
    return value;
  });
}

async function getJSON(path) {
  let response;
  try {
    response = await fetch(path, { headers: { Accept: 'application/json' }, cache: 'no-store' });
  } catch (e) {
    throw new Waiting(`the node does not answer ${path} (${e.message})`);
  }
  const text = await response.text();
  if (!response.ok) {
    let detail = '';
    try {
      detail = JSON.parse(text).detail;
    } catch {
      detail = text.slice(0, 200);
    }
    const error = response.status >= 500 ? Waiting : Failure;
    throw new error(`${path} answered ${response.status}: ${detail}`);
  }
  return parseJSON(text);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --------------------------------------------------------------- crypto --

async function sha256(...parts) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', concat(...parts)));
}

const importedKeys = new Map();

/** Ed25519 verification (RFC 8032) by WebCrypto. */
async function ed25519(publicKey, signature, data) {
  if (!globalThis.crypto || !crypto.subtle) {
    throw new Unsupported('this page is not in a secure context, so WebCrypto is not available (open it over https or from localhost)');
  }
  const id = toHex(publicKey);
  let key = importedKeys.get(id);
  if (!key) {
    try {
      key = await crypto.subtle.importKey('raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
    } catch (e) {
      if (e && e.name === 'NotSupportedError') {
        throw new Unsupported('this browser has no Ed25519 in WebCrypto (recent Chromium, Firefox and Safari do)');
      }
      return false; // not a public key at all: no signature verifies under it
    }
    importedKeys.set(id, key);
  }
  return crypto.subtle.verify({ name: 'Ed25519' }, key, signature, data);
}

// ------------------------------------------------------------- protocol --

/** PROTOCOL §6: the 111 header bytes of a block object. */
function headerBytes(b) {
  return concat(
    DOMAIN.block,
    u64be(b.index, 'index'),
    fromHex(b.prev_hash, 32, 'prev_hash'),
    fromHex(b.merkle_root, 32, 'merkle_root'),
    u64be(b.first_seq, 'first_seq'),
    u32be(b.message_count, 'message_count'),
    i64be(b.sealed_at, 'sealed_at'),
  );
}

const blockHash = (b) => sha256(headerBytes(b));

/** PROTOCOL §5: SHA-256(0x00 || signature || message_bytes). */
const leafHash = (signature, messageBytes) => sha256([0], signature, messageBytes);

/** RFC 6962 §2.1: the Merkle tree hash of a list of leaf hashes. */
async function merkleRoot(leaves) {
  if (leaves.length === 0) return sha256();
  if (leaves.length === 1) return leaves[0];
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return sha256([1], await merkleRoot(leaves.slice(0, k)), await merkleRoot(leaves.slice(k)));
}

/** RFC 9162 §2.1.3.2: the root an inclusion proof leads to. */
async function rootFromPath(index, size, leaf, path) {
  let fn = big(index, 'leaf index');
  let sn = big(size, 'tree size') - 1n;
  if (fn > sn) throw new Failure(`leaf ${fn} is not in a tree of ${sn + 1n}`);
  let r = leaf;
  for (const p of path) {
    if (sn === 0n) throw new Failure('the audit path is longer than the tree allows');
    if ((fn & 1n) === 1n || fn === sn) {
      r = await sha256([1], p, r);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = await sha256([1], r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new Failure('the audit path is shorter than the tree needs');
  return r;
}

/**
 * C2SP signed-note and tlog-checkpoint: checks the node's signature line
 * (key name = origin, key ID = SHA-256(origin || "\n" || 0x01 || key)[:4])
 * over the note text, then reads origin, size and root from the text.
 */
async function verifyCheckpoint(note, origin, key) {
  const cut = note.indexOf('\n\n');
  if (cut < 0) throw new Failure('the checkpoint is not a signed note (no blank line before the signatures)');
  const text = note.slice(0, cut + 1);
  const keyId = (await sha256(origin, '\n', [1], key)).slice(0, 4);
  let signed = null;
  for (const line of note.slice(cut + 2).split('\n')) {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m || m[1] !== origin) continue;
    const raw = fromBase64(m[2], 'a signature line');
    if (raw.length === 68 && equal(raw.slice(0, 4), keyId)) {
      signed = raw.slice(4);
      break;
    }
  }
  if (!signed) {
    throw new Failure(`the checkpoint has no signature line by ${origin} with key ID ${toHex(keyId)}`);
  }
  if (!(await ed25519(key, signed, te.encode(text)))) {
    throw new Failure('the checkpoint signature does not verify under the node key: the note was changed');
  }
  const [name, size, root] = text.split('\n');
  if (name !== origin) throw new Failure(`the checkpoint is for log ${JSON.stringify(name)}, not ${origin}`);
  if (!/^(0|[1-9]\d*)$/.test(size || '')) throw new Failure(`the checkpoint's tree size ${JSON.stringify(size)} is not a number`);
  const rootBytes = fromBase64(root || '', 'the checkpoint root');
  if (rootBytes.length !== 32) throw new Failure('the checkpoint root is not 32 bytes');
  return { size: BigInt(size), root: rootBytes };
}

/** PROTOCOL §2: what a stored message must be, and its leaf hash. */
async function checkMessage(m, nodeKeyHex) {
  const signature = fromHex(m.signature, 64, 'signature');
  const sender = fromHex(m.sender, 32, 'sender');
  const bytes = te.encode(m.message);
  const leaf = await leafHash(signature, bytes);
  const problems = [];
  let parsed = null;
  try {
    parsed = JSON.parse(m.message);
  } catch {
    problems.push('its bytes are not JSON');
  }
  if (parsed && parsed.sender !== m.sender) problems.push(`it names sender ${parsed.sender}, but is stored under ${m.sender}`);
  if (parsed && parsed.node !== nodeKeyHex) problems.push(`it is bound to node ${parsed.node}, not to this node`);
  if (!(await ed25519(sender, signature, concat(DOMAIN.message, bytes)))) {
    problems.push('its signature does not verify under its sender key: the message or its signature was changed');
  }
  if (toHex(leaf) !== m.leaf_hash) problems.push(`its bytes hash to leaf ${toHex(leaf)}, not the stored ${m.leaf_hash}`);
  return { leaf, problems };
}

// ------------------------------------------------------------- the pin --

const PIN = 'sealchain.node-key';

function readPin() {
  const keyHex = meta('sealchain-node-key');
  const origin = meta('sealchain-origin');
  const pin = { keyHex, origin, pageKeyHex: keyHex, state: 'unpinned', since: null };
  try {
    const stored = JSON.parse(localStorage.getItem(PIN) || 'null');
    if (!stored) {
      localStorage.setItem(PIN, JSON.stringify({ key: keyHex, origin, since: Date.now() }));
      return { ...pin, state: 'first', since: Date.now() };
    }
    if (stored.key !== keyHex || stored.origin !== origin) {
      return { ...pin, state: 'changed', keyHex: stored.key, origin: stored.origin, since: stored.since };
    }
    return { ...pin, state: 'pinned', since: stored.since };
  } catch {
    return pin;
  }
}

const pin = readPin();

function showPin() {
  const box = document.querySelector('[data-pin]');
  if (!box) return;
  const status = box.querySelector('.pin-status');
  const since = pin.since ? new Date(pin.since).toISOString().replace('T', ' ').slice(0, 19) + ' UTC' : '';
  box.dataset.state = pin.state;
  status.hidden = false;
  status.textContent = {
    first: 'Pinned in this browser just now (first visit).',
    pinned: `Pinned in this browser since ${since}.`,
    unpinned: 'This browser does not let the page store the pin, so the key is taken from the page on each visit.',
    changed:
      `This browser pinned another key for this site on ${since}: ${pin.keyHex}. Either the node's key changed ` +
      'or this is not the node you visited before. The checks below use the pinned key, so they fail ' +
      "until you trust the new one (after checking it with the node's operator).",
  }[pin.state];
  const forget = box.querySelector('.pin-forget');
  if (pin.state === 'changed') {
    forget.hidden = false;
    forget.addEventListener('click', () => {
      localStorage.setItem(PIN, JSON.stringify({ key: pin.pageKeyHex, origin: pin.origin, since: Date.now() }));
      location.reload();
    });
  }
}

/** The node key the checks trust (the pin), as bytes. */
function nodeKey() {
  if (!pin.keyHex) throw new Failure('this page names no node key');
  return fromHex(pin.keyHex, 32, 'the node key');
}

// -------------------------------------------------------------- badges --

const LABELS = { idle: 'Not checked', pending: 'Checking…', ok: 'Verified', fail: 'Failed', wait: 'Waiting' };

function setCheck(el, state, text, label = LABELS[state]) {
  if (!el) return;
  el.dataset.state = state;
  const badge = el.querySelector('.badge');
  badge.textContent = label;
  const result = el.querySelector('.result');
  result.textContent = text || '';
  result.hidden = !text;
}

function check(name) {
  return document.querySelector(`[data-check="${name}"]`);
}

/** Runs one check and shows its outcome. */
async function run(name, work) {
  const el = check(name);
  if (!el) return;
  setCheck(el, 'pending', '');
  try {
    setCheck(el, 'ok', await work());
  } catch (e) {
    if (e instanceof Waiting) setCheck(el, 'wait', e.message);
    else if (e instanceof Unsupported) setCheck(el, 'wait', e.message, 'Cannot check');
    else if (e instanceof Failure) setCheck(el, 'fail', e.message);
    else setCheck(el, 'fail', `the check could not run: ${e && e.message ? e.message : e}`);
  }
}

/** Compares what the page shows with the values that were checked. */
function pageFields(values) {
  const wrong = [];
  for (const el of document.querySelectorAll('[data-field]')) {
    const name = el.dataset.field;
    if (!(name in values)) continue;
    const want = String(values[name]);
    if (el.textContent.trim() !== want) wrong.push(`${name} shows ${el.textContent.trim()}, the data says ${want}`);
  }
  if (wrong.length) throw new Failure(`the page does not show the checked data: ${wrong.join('; ')}`);
  return 'Every field shown is the value the checks used.';
}

function showPath(name, path) {
  const list = document.querySelector(`[data-path="${name}"]`);
  if (!list) return;
  list.replaceChildren(
    ...path.map((h) => {
      const li = document.createElement('li');
      li.textContent = toHex(h);
      return li;
    }),
  );
  if (!path.length) {
    const li = document.createElement('li');
    li.className = 'muted';
    li.textContent = 'Empty: the message is the only leaf, its hash is the root.';
    list.append(li);
  }
}

function utc(ms) {
  return new Date(Number(ms)).toISOString().replace('T', ' ').replace('Z', ' UTC');
}

// ----------------------------------------------------------- the pages --

async function verifyBlock(section) {
  const names = ['header-hash', 'block-signature', 'merkle-root', 'message-signatures', 'chain-link', 'page-fields'];
  names.forEach((n) => setCheck(check(n), 'pending', ''));
  let block;
  try {
    block = await getJSON(`/v1/blocks/${section.dataset.index}`);
  } catch (e) {
    names.forEach((n) => run(n, () => Promise.reject(e)));
    return;
  }
  const index = big(block.index, 'index');
  const hash = blockHash(block);
  const keyHex = pin.keyHex;

  run('header-hash', async () => {
    const h = toHex(await hash);
    if (h !== block.hash) {
      throw new Failure(`the header fields hash to ${h}, but the block says ${block.hash}: a field was changed after the block was sealed`);
    }
    return `The 111 header bytes hash to ${h}.`;
  });

  run('block-signature', async () => {
    const key = nodeKey();
    if (block.signer !== keyHex) throw new Failure(`the block names signer ${block.signer}, not the node key ${keyHex}`);
    const ok = await ed25519(key, fromHex(block.signature, 64, 'signature'), concat(DOMAIN.blockSignature, await hash));
    if (!ok) throw new Failure('the signature does not verify under the node key over the hash of these fields');
    return 'Signed by the node key.';
  });

  const results = Promise.all(block.messages.map((m) => checkMessage(m, keyHex)));

  run('merkle-root', async () => {
    const messages = block.messages;
    if (BigInt(messages.length) !== big(block.message_count, 'message_count')) {
      throw new Failure(`the header counts ${block.message_count} messages, the block lists ${messages.length}`);
    }
    const blockSize = BigInt(meta('sealchain-block-size') || '0');
    if (big(block.first_seq, 'first_seq') !== index * blockSize) {
      throw new Failure(`block ${index} must begin at seq ${index * blockSize}, not ${block.first_seq}`);
    }
    messages.forEach((m, i) => {
      if (big(m.seq, 'seq') !== big(block.first_seq, 'first_seq') + BigInt(i)) {
        throw new Failure(`message ${i} of the block has seq ${m.seq}, expected ${big(block.first_seq, 'first_seq') + BigInt(i)}`);
      }
    });
    const leaves = (await results).map((r) => r.leaf);
    const root = toHex(await merkleRoot(leaves));
    if (root !== block.merkle_root) {
      const changed = messages.filter((m, i) => toHex(leaves[i]) !== m.leaf_hash).map((m) => m.seq);
      const which = changed.length ? ` (the bytes of seq ${changed.join(', ')} no longer match their leaf hash)` : '';
      throw new Failure(`the ${messages.length} messages have root ${root}, but the header says ${block.merkle_root}${which}`);
    }
    return `The ${messages.length} messages have root ${root}.`;
  });

  run('message-signatures', async () => {
    const all = await results;
    const failed = [];
    all.forEach((r, i) => {
      const seq = String(block.messages[i].seq);
      const badge = document.querySelector(`[data-message-check="${seq}"]`);
      const note = document.querySelector(`[data-message-result="${seq}"]`);
      const item = badge && badge.closest('.msg');
      if (r.problems.length) failed.push(`seq ${seq}: ${r.problems.join('; ')}`);
      if (badge) {
        badge.dataset.state = r.problems.length ? 'fail' : 'ok';
        badge.textContent = r.problems.length ? 'Failed' : 'Verified';
      }
      if (item) item.dataset.state = r.problems.length ? 'fail' : 'ok';
      if (note) {
        note.textContent = r.problems.length ? `This message fails: ${r.problems.join('; ')}.` : '';
        note.hidden = !r.problems.length;
      }
    });
    if (failed.length) throw new Failure(`${failed.length} of ${all.length} fail. ${failed.join('. ')}.`);
    return `All ${all.length} are signed by their senders and name this node.`;
  });

  run('chain-link', async () => {
    if (index === 0n) {
      if (block.prev_hash !== '0'.repeat(64)) throw new Failure(`block 0 must have 32 zero bytes as previous hash, not ${block.prev_hash}`);
      return 'Block 0 begins the chain: its previous hash is 32 zero bytes.';
    }
    const page = await getJSON(`/v1/blocks?from=${index - 1n}&limit=1`);
    const prev = page.blocks && page.blocks[0];
    if (!prev || big(prev.index, 'index') !== index - 1n) throw new Failure(`the node did not give block ${index - 1n}`);
    const h = toHex(await blockHash(prev));
    if (h !== block.prev_hash) {
      throw new Failure(`block ${prev.index}'s header hashes to ${h}, but this block's previous hash is ${block.prev_hash}`);
    }
    return `Block ${prev.index}'s header hashes to this block's previous hash.`;
  });

  run('page-fields', async () => pageFields(block));
}

async function verifyMessage(section) {
  const seq = BigInt(section.dataset.seq);
  const names = ['message-signature', 'leaf-hash', 'receipt-signature', 'block-inclusion', 'checkpoint-signature', 'log-inclusion', 'page-fields'];
  names.forEach((n) => setCheck(check(n), 'pending', ''));
  let record;
  try {
    record = await getJSON(`/v1/messages/${seq}`);
  } catch (e) {
    names.forEach((n) => run(n, () => Promise.reject(e)));
    return;
  }
  const result = checkMessage(record, pin.keyHex);
  const leaf = result.then((r) => r.leaf);

  run('message-signature', async () => {
    const { problems } = await result;
    const own = problems.filter((p) => !p.includes('leaf'));
    if (own.length) throw new Failure(`The message fails: ${own.join('; ')}.`);
    return 'Signed by its sender, and bound to this node.';
  });

  run('leaf-hash', async () => {
    const h = toHex(await leaf);
    if (h !== record.leaf_hash) throw new Failure(`the signed message hashes to ${h}, but its stored leaf hash is ${record.leaf_hash}`);
    return `The signed message hashes to ${h}.`;
  });

  run('receipt-signature', async () => {
    const el = document.querySelector('[data-receipt]');
    if (!el) throw new Failure('the page has no receipt');
    const receipt = parseJSON(el.textContent);
    if (big(receipt.seq, 'seq') !== seq || receipt.received_at !== record.received_at) {
      throw new Failure("the receipt's seq and time are not this message's");
    }
    if (receipt.leaf_hash !== toHex(await leaf)) {
      throw new Failure(`the receipt covers leaf hash ${receipt.leaf_hash}, but this message's bytes hash to ${toHex(await leaf)}`);
    }
    const input = concat(DOMAIN.receipt, u64be(seq, 'seq'), await leaf, i64be(record.received_at, 'received_at'));
    if (!(await ed25519(nodeKey(), fromHex(receipt.signature, 64, 'receipt signature'), input))) {
      throw new Failure('the receipt signature does not verify under the node key');
    }
    return 'The node key signed this seq, leaf hash and time of arrival.';
  });

  run('block-inclusion', async () => {
    if (!record.sealed) throw new Waiting(`block ${record.block_index} is still open; its proof exists once it is sealed`);
    const proof = await getJSON(`/v1/messages/${seq}/proof`);
    const page = await getJSON(`/v1/blocks?from=${record.block_index}&limit=1`);
    const header = page.blocks && page.blocks[0];
    if (!header || header.index !== record.block_index) throw new Failure(`the node did not give block ${record.block_index}`);
    const hash = await blockHash(header);
    if (toHex(hash) !== header.hash) throw new Failure(`block ${header.index}'s fields hash to ${toHex(hash)}, not its hash ${header.hash}`);
    if (!(await ed25519(nodeKey(), fromHex(header.signature, 64, 'block signature'), concat(DOMAIN.blockSignature, hash)))) {
      throw new Failure(`block ${header.index}'s signature does not verify under the node key`);
    }
    const leafIndex = seq - big(header.first_seq, 'first_seq');
    if (big(proof.leaf_index, 'leaf_index') !== leafIndex || big(proof.tree_size, 'tree_size') !== big(header.message_count, 'message_count')) {
      throw new Failure(`the proof is for leaf ${proof.leaf_index} of ${proof.tree_size}, but the message is leaf ${leafIndex} of ${header.message_count}`);
    }
    const path = proof.audit_path.map((h, i) => fromHex(h, 32, `audit path hash ${i}`));
    showPath('block', path);
    const root = await rootFromPath(leafIndex, header.message_count, await leaf, path);
    if (toHex(root) !== header.merkle_root) {
      throw new Failure(`the audit path leads from this message to ${toHex(root)}, not to block ${header.index}'s Merkle root ${header.merkle_root}`);
    }
    return `${path.length} hashes lead from the message to the Merkle root of block ${header.index}, whose header and signature verify.`;
  });

  const log = (async () => {
    for (let attempt = 0; ; attempt++) {
      let note;
      try {
        const response = await fetch('/checkpoint', { cache: 'no-store' });
        note = await response.text();
        if (!response.ok) throw new Waiting(`/checkpoint answered ${response.status}`);
      } catch (e) {
        throw e instanceof Waiting ? e : new Waiting(`the node does not answer /checkpoint (${e.message})`);
      }
      const checkpoint = await verifyCheckpoint(note, pin.origin, nodeKey());
      setCheck(check('checkpoint-signature'), 'ok', `Signed by the node key for ${pin.origin}; tree size ${checkpoint.size}.`);
      if (seq < checkpoint.size) return checkpoint;
      if (attempt >= 30) throw new Waiting(`the newest checkpoint holds ${checkpoint.size} messages, not yet seq ${seq}`);
      setCheck(check('log-inclusion'), 'wait', `The newest checkpoint holds ${checkpoint.size} messages; waiting for one with seq ${seq}.`);
      await sleep(1000);
    }
  })();

  run('checkpoint-signature', async () => {
    const checkpoint = await log;
    return `Signed by the node key for ${pin.origin}; tree size ${checkpoint.size}.`;
  });

  run('log-inclusion', async () => {
    const checkpoint = await log;
    const proof = await getJSON(`/v1/log/proof/inclusion?seq=${seq}&tree_size=${checkpoint.size}`);
    const path = proof.audit_path.map((h, i) => fromHex(h, 32, `audit path hash ${i}`));
    showPath('log', path);
    const root = await rootFromPath(seq, checkpoint.size, await leaf, path);
    if (!equal(root, checkpoint.root)) {
      throw new Failure(`the audit path leads from this message to ${toHex(root)}, not to the checkpoint's root ${toHex(checkpoint.root)}`);
    }
    return `${path.length} hashes lead from the message to the root of the checkpoint of size ${checkpoint.size}.`;
  });

  run('page-fields', async () => pageFields(record));
}

// -------------------------------------------------------- the overview --

function setText(name, text) {
  for (const el of document.querySelectorAll(`[data-live="${name}"]`)) {
    if (el.textContent !== text) {
      el.textContent = text;
      const dd = el.closest('dd');
      if (dd) {
        dd.classList.remove('bump');
        void dd.offsetWidth; // restart the animation
        dd.classList.add('bump');
      }
    }
  }
}

const number = (n) => BigInt(n).toLocaleString('en-US');

function overview(stats) {
  const blockSize = BigInt(stats.dataset.blockSize);
  let blocks = BigInt(stats.dataset.blocks);
  let messages = BigInt(stats.dataset.messages);
  // The node's clock, so the rate does not depend on this computer's.
  const offset = Number(stats.dataset.now) - Date.now();
  const samples = [{ at: Number(stats.dataset.rateAt), size: Number(stats.dataset.rateSize) }];
  const WINDOW = 60_000;

  const showCounts = () => {
    setText('blocks', number(blocks));
    setText('messages', number(messages));
    setText('open-block', number(blocks));
    const open = messages - blocks * blockSize;
    setText('open-count', number(open < 0n ? 0n : open));
  };
  const showRate = () => {
    const now = Date.now() + offset;
    while (samples.length > 1 && samples[1].at <= now - WINDOW) samples.shift();
    const base = samples[0];
    const latest = Math.max(Number(messages), samples[samples.length - 1].size);
    const rate = now > base.at ? ((latest - base.size) * 1000) / (now - base.at) : 0;
    setText('rate', Math.max(rate, 0).toFixed(1));
  };

  const checkpoint = async (note, publishedAt) => {
    const verified = await verifyCheckpoint(note, pin.origin, nodeKey());
    setText('cp-size', number(verified.size));
    setText('cp-root', toHex(verified.root));
    setText('cp-note', note);
    if (publishedAt !== undefined) {
      setText('cp-time', utc(publishedAt));
      samples.push({ at: Number(publishedAt), size: Number(verified.size) });
    }
    if (verified.size > messages) messages = verified.size;
    showCounts();
    return `Signed by the node key for ${pin.origin}; tree size ${verified.size}.`;
  };

  run('checkpoint-signature', async () => {
    const response = await fetch('/checkpoint', { cache: 'no-store' });
    if (!response.ok) throw new Waiting(`/checkpoint answered ${response.status}`);
    return checkpoint(await response.text());
  });

  const table = document.querySelector('[data-latest-blocks] tbody');
  const addBlock = (b) => {
    const index = big(b.index, 'index');
    if (index + 1n > blocks) blocks = index + 1n;
    const end = (index + 1n) * blockSize;
    if (end > messages) messages = end;
    showCounts();
    if (!table || table.querySelector(`a[href="/blocks/${index}"]`)) return;
    const row = document.createElement('tr');
    row.className = 'new';
    const cell = (child) => {
      const td = document.createElement('td');
      if (typeof child === 'string') td.textContent = child;
      else td.append(child);
      row.append(td);
      return td;
    };
    const link = document.createElement('a');
    link.href = `/blocks/${index}`;
    link.textContent = String(index);
    cell(link);
    const code = document.createElement('code');
    code.title = b.hash;
    code.textContent = `${b.hash.slice(0, 8)}…${b.hash.slice(-6)}`;
    cell(code);
    cell(String(b.message_count)).className = 'num';
    const time = document.createElement('time');
    time.dateTime = new Date(Number(b.sealed_at)).toISOString();
    time.textContent = utc(b.sealed_at);
    cell(time);
    // Newest first; a block that arrives late goes below a newer one.
    const rows = [...table.rows];
    const later = rows.find((r) => BigInt(r.cells[0].textContent) < index);
    table.insertBefore(row, later || null);
    while (table.rows.length > 10) table.deleteRow(table.rows.length - 1);
    const empty = document.querySelector('[data-empty-blocks]');
    if (empty) empty.remove();
  };

  const status = document.querySelector('[data-live-status]');
  const setStatus = (state, text) => {
    if (!status) return;
    status.dataset.state = state;
    status.querySelector('.live-text').textContent = text;
  };
  if (!('EventSource' in window)) return;
  setStatus('connecting', 'Connecting…');
  const events = new EventSource('/v1/events');
  events.addEventListener('open', () => setStatus('live', 'Live'));
  events.addEventListener('error', () => setStatus('lost', 'Reconnecting…'));
  events.addEventListener('block', (e) => {
    try {
      addBlock(parseJSON(e.data));
      showRate();
    } catch (error) {
      console.error('a block event could not be shown', error);
    }
  });
  events.addEventListener('checkpoint', (e) => {
    run('checkpoint-signature', async () => {
      const c = parseJSON(e.data);
      const text = await checkpoint(c.note, c.published_at);
      showRate();
      return text;
    });
  });
  setInterval(showRate, 2000);
}

// ------------------------------------------------------------------ go --

showPin();
const block = document.querySelector('[data-verify="block"]');
if (block) verifyBlock(block);
const message = document.querySelector('[data-verify="message"]');
if (message) verifyMessage(message);
const stats = document.querySelector('[data-overview]');
if (stats) overview(stats);
