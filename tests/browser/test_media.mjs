// test_media.mjs - pictures and files in the demo page (issue 14): one
// person sends a picture with the paperclip, the other sees it inline as a
// thumbnail (the bytes fetched with the token in a header, scaled by the
// browser); a file dropped on the chat arrives as a download chip whose
// download is the very bytes. Screenshots in tests/artifacts/.

import fs from 'node:fs';
import zlib from 'node:zlib';
import { assert, test } from '../integration/lib/harness.mjs';
import { Stack, devSecret } from '../integration/lib/stack.mjs';
import { chatWith, launch, noPageErrors, person, screenshot, untilShown } from './lib/browser.mjs';

let s;
let browser;
const people = [];

/** A w x h PNG, a colour gradient with a dark diagonal, built by hand. */
function png(w, h) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, sum]);
  };
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      const line = Math.abs(x * h - y * w) < w * 2;
      raw[o] = line ? 30 : Math.floor((255 * x) / w);
      raw[o + 1] = line ? 30 : Math.floor((255 * y) / h);
      raw[o + 2] = line ? 60 : 200;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2; // RGB
  return Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

test('start: larkd with development tokens, lighttpd, Chromium', async () => {
  s = await new Stack({ LARK_JWT_SECRET: devSecret, LARK_DEV_TOKENS: '1' }).start();
  browser = await launch();
});

test('a picture from the paperclip shows inline at the other side', async () => {
  const alice = await person(browser, s, 'alice', 'ws');
  const bob = await person(browser, s, 'bob', 'sse');
  people.push(alice, bob);
  await chatWith(alice, 'bob');
  const picture = png(480, 320);
  await alice.page.setInputFiles('#attach', { name: 'sunset.png', mimeType: 'image/png', buffer: picture });
  // stored: the sender's own thumbnail, from the server's bytes
  await alice.page.waitForSelector('#messages li.msg[data-seq="1"] img.thumb');
  await bob.page.click('#conversations li[data-user=alice]');
  const thumb = '#messages li.msg[data-seq="1"] img.thumb';
  await bob.page.waitForSelector(thumb);
  await bob.page.waitForFunction((sel) => {
    const img = document.querySelector(sel);
    return img && img.complete && img.naturalWidth > 0;
  }, thumb);
  const size = await bob.page.$eval(thumb, (img) => ({
    natural: [img.naturalWidth, img.naturalHeight], shown: [img.clientWidth, img.clientHeight], src: img.src, alt: img.alt,
  }));
  assert.deepEqual(size.natural, [480, 320], 'the very picture');
  assert.ok(size.shown[0] <= 260 && size.shown[0] > 0, `scaled by the browser: ${size.shown}`);
  assert.match(size.src, /^blob:/, 'fetched with the token in a header, not in the URL');
  assert.equal(size.alt, 'sunset.png');
  // the conversation list says what it is
  assert.match(await bob.page.textContent('#conversations li[data-user=alice] .last'), /Photo/);
  await screenshot(bob, 'media-bob');
  await screenshot(alice, 'media-alice');
  noPageErrors(alice, bob);
});

test('a file dropped on the chat arrives as a download chip; the download is the file', async () => {
  const [alice, bob] = people;
  const text = 'Minutes of Tuesday\n- ship the media feature\n';
  // a drop as a browser makes one: a DataTransfer holding a File
  await alice.page.evaluate((content) => {
    const dt = new DataTransfer();
    dt.items.add(new File([content], 'minutes.txt', { type: 'text/plain' }));
    const chat = document.querySelector('.chat');
    chat.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
    chat.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, text);
  const chip = '#messages li.msg[data-seq="2"] a.chip';
  await bob.page.waitForSelector(chip);
  assert.equal(await bob.page.textContent(`${chip} .chip-name`), 'minutes.txt');
  const [download] = await Promise.all([bob.page.waitForEvent('download'), bob.page.click(chip)]);
  assert.equal(download.suggestedFilename(), 'minutes.txt');
  const file = await download.path();
  assert.equal(fs.readFileSync(file, 'utf8'), text);
  await untilShown(alice, (m) => m.length === 2 && m[1].status === 'read', 'read by bob');
  await screenshot(bob, 'media-chip-bob');
  noPageErrors(alice, bob);
});

test('stop', async () => {
  for (const p of people) await p.context.close().catch(() => {});
  if (browser) await browser.close();
  if (s) await s.stop();
});
