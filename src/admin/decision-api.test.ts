import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toQuery } from './decision-api.js';

describe('decision API actions use the proxy\'s own table of governed methods', () => {
  it('judges completion/complete by the prompt or template its ref names', () => {
    assert.deepEqual(toQuery({ method: 'completion/complete', params: { ref: { type: 'ref/prompt', name: 'secret_prompt' } } }, 's'),
      { method: 'completion/complete', resource: 'secret_prompt', kind: 'name', arguments: {}, sourceId: 's', principal: undefined });
    const t = toQuery({ method: 'completion/complete', params: { ref: { type: 'ref/resource', uri: 'demo://resource/{id}' } } }, 's');
    assert.equal(typeof t === 'object' && t.kind, 'template');
    assert.match(String(toQuery({ method: 'completion/complete', params: {} }, 's')), /needs params\.ref/);
  });

  it('governs resources/unsubscribe like resources/subscribe', () => {
    const q = toQuery({ method: 'resources/unsubscribe', uri: 'file:///etc/passwd' }, 's');
    assert.equal(typeof q === 'object' && q.resource, 'file:///etc/passwd');
    assert.match(String(toQuery({ method: 'resources/unsubscribe' }, 's')), /needs a uri/);
  });

  it('refuses a URI spelling that is not canonical, as the proxy path does', () => {
    for (const uri of ['FILE:///etc/passwd', 'file://localhost/etc/passwd', 'file:///tmp/../etc/passwd', 'DEMO://resource/dynamic/text/1']) {
      assert.match(String(toQuery({ method: 'resources/read', uri }, 's')), /not in canonical form; send '(file:\/\/\/etc\/passwd|demo:\/\/resource\/dynamic\/text\/1)'/, uri);
    }
    assert.match(String(toQuery({ method: 'resources/read', uri: '/etc/passwd' }, 's')), /not an absolute URI/);
    const ok = toQuery({ method: 'resources/read', uri: 'file:///etc/passwd' }, 's');
    assert.equal(typeof ok === 'object' && ok.kind, 'uri');
  });

  it('asks subscriptions/listen to be split into one question per URI', () => {
    assert.match(String(toQuery({ method: 'subscriptions/listen', params: {} }, 's')), /ask about each as resources\/subscribe/);
  });

  it('tool calls keep their shapes (tool, name, tool_name, params.name)', () => {
    for (const a of [{ tool: 'x' }, { name: 'x' }, { tool_name: 'x' }, { method: 'tools/call', params: { name: 'x' } }]) {
      const q = toQuery(a, 's');
      assert.equal(typeof q === 'object' && q.resource, 'x', JSON.stringify(a));
    }
  });
});
