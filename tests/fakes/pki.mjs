// pki.mjs - the keys and certificates a push test needs, made at test time
// with openssl (nothing secret is kept in the repository):
//   - a throw-away CA, and a TLS certificate for 127.0.0.1 / localhost signed
//     by it (lark-push trusts the CA through LARK_PUSH_CA_FILE);
//   - an APNs .p8 key (PKCS#8 EC P-256, as Apple hands them out);
//   - an FCM service-account JSON with an RSA key, as Google hands them out.
// The public halves are returned so the fakes can verify the JWTs.

import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Make everything in dir; returns paths and key material. */
export function makePki(dir, { tokenUri = 'https://oauth2.example.test/token', projectId = 'lark-test' } = {}) {
  fs.mkdirSync(dir, { recursive: true });
  const p = (f) => path.join(dir, f);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=lark test CA'], dir);
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], dir);
  fs.writeFileSync(p('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' +
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n');
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
    '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext'], dir);

  // APNs: an EC P-256 key in PKCS#8 PEM, like AuthKey_KEYID.p8
  const apns = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  fs.writeFileSync(p('AuthKey.p8'), apns.privateKey.export({ type: 'pkcs8', format: 'pem' }));

  // FCM: a service account with an RSA key
  const fcm = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const account = {
    type: 'service_account',
    project_id: projectId,
    private_key_id: crypto.randomBytes(20).toString('hex'),
    private_key: fcm.privateKey.export({ type: 'pkcs8', format: 'pem' }),
    client_email: `lark-push@${projectId}.iam.gserviceaccount.com`,
    client_id: '1234567890',
    token_uri: tokenUri,
  };
  fs.writeFileSync(p('service-account.json'), JSON.stringify(account, null, 2));
  return {
    caFile: p('ca.pem'),
    tls: { key: fs.readFileSync(p('server.key')), cert: fs.readFileSync(p('server.pem')) },
    apnsKeyFile: p('AuthKey.p8'),
    apnsPublicKey: apns.publicKey,
    fcmCredentials: p('service-account.json'),
    fcmPublicKey: fcm.publicKey,
    account,
  };
}

const b64json = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));

/**
 * Verify a compact JWS with publicKey and alg (RS256 | ES256); returns
 * { header, claims } or throws with the reason.
 */
export function verifyJwt(token, publicKey, alg) {
  const parts = String(token).split('.');
  if (parts.length !== 3) throw new Error('not a compact JWS');
  const header = b64json(parts[0]);
  const claims = b64json(parts[1]);
  if (header.alg !== alg) throw new Error(`alg ${header.alg}, expected ${alg}`);
  const data = Buffer.from(`${parts[0]}.${parts[1]}`);
  const sig = Buffer.from(parts[2], 'base64url');
  const ok = alg === 'ES256'
    ? crypto.verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig)
    : crypto.verify('sha256', data, publicKey, sig);
  if (!ok) throw new Error('bad signature');
  return { header, claims };
}
