import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalPrefix, canonicalProblem, canonicalTemplate, canonicalUri, looksLikeUri } from './canonical.js';

describe('canonical resource URIs', () => {
  it('maps every spelling a WHATWG server reads as one resource to one string', () => {
    const denied = 'demo://resource/dynamic/text/1';
    for (const u of ['DEMO://resource/dynamic/text/1', 'demo://RESOURCE/dynamic/text/1', 'demo://resource/dynamic/x/../text/1', 'demo://resource/dynamic/./text/1',
      'demo://resource/dynamic/x/%2e%2E/text/1', 'demo://resource/dynamic/%74ext/1', ' demo://resource/dynamic/text/1\n', 'demo://resource/dynamic/te\txt/1']) {
      assert.equal(canonicalUri(u), denied, JSON.stringify(u));
    }
    for (const u of ['FILE:///etc/passwd', 'file://localhost/etc/passwd', 'file:///tmp/../etc/passwd', 'file:/etc/passwd', 'file:///etc/%70asswd', 'file:\\\\\\etc\\passwd']) {
      assert.equal(canonicalUri(u), 'file:///etc/passwd', JSON.stringify(u));
    }
    assert.equal(canonicalUri('HTTP://Example.COM:80/a/b/../c'), 'http://example.com/a/c');
  });

  it('keeps what distinguishes resources', () => {
    assert.equal(canonicalUri('demo://resource/dynamic/text/2'), 'demo://resource/dynamic/text/2');
    assert.equal(canonicalUri('demo://r/Path/Case'), 'demo://r/Path/Case');
    assert.equal(canonicalUri('demo://r/a%2fb'), 'demo://r/a%2Fb');
    assert.equal(canonicalUri('demo://r/a b'), 'demo://r/a%20b');
    assert.equal(canonicalUri('demo:opaque/../x'), 'demo:opaque/../x');
  });

  it('is a fixed point, so a canonical URI is accepted as sent', () => {
    for (const u of ['DEMO://R/%7e%41%c3%a9/../x?Q=%2f#F', 'file://localhost/a b/ü', 'http://EXAMPLE.com:8080/%2E/a']) {
      const c = canonicalUri(u)!;
      assert.equal(canonicalUri(c), c);
      assert.equal(new URL(c).href, c);
    }
  });

  it('cannot parse relative references and bad hosts', () => {
    assert.equal(canonicalUri('/etc/passwd'), undefined);
    assert.equal(canonicalUri('secret'), undefined);
    assert.equal(canonicalUri('http://'), undefined);
  });

  it('canonicalises the literal start of globs and templates only', () => {
    assert.equal(canonicalPrefix('DEMO://Resource/Dynamic/'), 'demo://resource/Dynamic/');
    assert.equal(canonicalPrefix('demo://resource/x/../'), 'demo://resource/');
    assert.equal(canonicalPrefix('HTTP://EXAMPLE.CO'), 'http://example.co');
    assert.equal(canonicalPrefix('delete_'), 'delete_');
    assert.equal(canonicalTemplate('DEMO://resource/dynamic/text/{id}'), 'demo://resource/dynamic/text/{id}');
    assert.equal(canonicalTemplate('demo://resource/dynamic/text/{id}'), 'demo://resource/dynamic/text/{id}');
    assert.equal(canonicalTemplate('{scheme}://x'), '{scheme}://x');
    // what the parser strips is stripped from templates too, so ' file:///etc/{id}' is not a second name
    assert.equal(canonicalTemplate(' file:///e\ttc/{id}\n'), 'file:///etc/{id}');
    assert.equal(looksLikeUri('file:///x'), true);
    assert.equal(looksLikeUri('delete_user'), false);
  });
});

describe('canonicalProblem (one refusal for the proxy path and the decision API)', () => {
  it('names the form to send, or says the URI is not absolute, or finds nothing', () => {
    assert.deepEqual(canonicalProblem('resources/read', 'FILE:///tmp/../etc/passwd', 'uri'), {
      message: "resource URI 'FILE:///tmp/../etc/passwd' is not in canonical form; send 'file:///etc/passwd'",
      reason: 'non-canonical URI "FILE:///tmp/../etc/passwd" (canonical: file:///etc/passwd)',
      canonical: 'file:///etc/passwd',
    });
    assert.equal(canonicalProblem('resources/read', '/etc/passwd', 'uri')?.message, "'/etc/passwd' in resources/read is not an absolute URI");
    assert.equal(canonicalProblem('resources/read', 'file:///etc/passwd', 'uri'), undefined);
    assert.equal(canonicalProblem('completion/complete', 'demo://resource/{id}', 'template'), undefined);
    assert.equal(canonicalProblem('completion/complete', 'DEMO://resource/{id}', 'template')?.canonical, 'demo://resource/{id}');
  });
});
