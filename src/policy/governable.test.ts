import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  GOVERNED_METHODS, LIST_ITEM_KIND, LIST_ITEM_NAME, LIST_METHODS, MCP_CLIENT_METHODS, classifyMethod, isGoverned, listItemName,
  lookalikeOf, resourceKindOf, resourceNameOf, resourceOf, subscribedUris,
} from './governable.js';
import { skeleton } from '../core/confusables.js';

describe('governable methods', () => {
  it('names the resource of each governed method', () => {
    assert.equal(resourceNameOf('tools/call', { name: 'echo', arguments: {} }), 'echo');
    assert.equal(resourceNameOf('resources/read', { uri: 'file:///x' }), 'file:///x');
    assert.equal(resourceNameOf('resources/subscribe', { uri: 'file:///y' }), 'file:///y');
    assert.equal(resourceNameOf('resources/unsubscribe', { uri: 'file:///z' }), 'file:///z');
    assert.equal(resourceNameOf('prompts/get', { name: 'greet' }), 'greet');
  });

  it('completion/complete is judged by the prompt or resource template its ref names', () => {
    assert.deepEqual(resourceOf('completion/complete', { ref: { type: 'ref/prompt', name: 'secret_prompt' }, argument: { name: 'a', value: '' } }), { name: 'secret_prompt', kind: 'name' });
    assert.deepEqual(resourceOf('completion/complete', { ref: { type: 'ref/resource', uri: 'demo://x/{id}' } }), { name: 'demo://x/{id}', kind: 'template' });
    assert.equal(resourceOf('completion/complete', { ref: { type: 'ref/prompt', uri: 'demo://x' } }), undefined);
    assert.equal(resourceOf('completion/complete', { ref: { type: 'ref/tool', name: 'x' } }), undefined);
    assert.equal(resourceOf('completion/complete', { ref: 'secret_prompt' }), undefined);
    assert.equal(resourceOf('completion/complete', {}), undefined);
  });

  it('subscriptions/listen names the URIs it asks updates for', () => {
    assert.deepEqual(subscribedUris({ notifications: { resourceSubscriptions: ['file:///a', 'demo://b'] } }), ['file:///a', 'demo://b']);
    assert.deepEqual(subscribedUris({ notifications: { resourceSubscriptions: 'file:///a' } }), ['file:///a']);
    assert.equal(subscribedUris({ notifications: { toolsListChanged: true } }), undefined);
    assert.equal(subscribedUris({}), undefined);
    assert.equal(resourceOf('subscriptions/listen', { notifications: { resourceSubscriptions: ['file:///a'] } }), undefined);
  });

  it('undefined for other methods and for missing or non-string names', () => {
    assert.equal(resourceNameOf('tools/list', { name: 'x' }), undefined);
    assert.equal(resourceNameOf('initialize', {}), undefined);
    assert.equal(resourceNameOf('tools/call', {}), undefined);
    assert.equal(resourceNameOf('tools/call', { name: 42 }), undefined);
    assert.equal(resourceNameOf('tools/call', undefined), undefined);
    assert.equal(resourceNameOf('tools/call', null), undefined);
    assert.equal(resourceNameOf('resources/read', { name: 'x' }), undefined);
  });

  it('exposes the governed table and how each resource is compared', () => {
    assert.deepEqual([...GOVERNED_METHODS.keys()].sort(), ['completion/complete', 'prompts/get', 'resources/read', 'resources/subscribe', 'resources/unsubscribe', 'subscriptions/listen', 'tools/call']);
    assert.equal(isGoverned('tools/call'), true);
    assert.equal(isGoverned('completion/complete'), true);
    assert.equal(isGoverned('Tools/call'), false);
    assert.equal(resourceKindOf('resources/unsubscribe'), 'uri');
    assert.equal(resourceKindOf('tools/call'), 'name');
  });

  it('every governed method is an MCP client method, and no two MCP methods look alike', () => {
    for (const m of GOVERNED_METHODS.keys()) assert.ok(MCP_CLIENT_METHODS.has(m), m);
    const skeletons = new Set([...MCP_CLIENT_METHODS.keys()].map(skeleton));
    assert.equal(skeletons.size, MCP_CLIENT_METHODS.size);
  });

  it('classifies methods by the session revision', () => {
    assert.equal(classifyMethod('tools/call', '2025-03-26'), 'mcp');
    assert.equal(classifyMethod('server/discover', '2026-07-28'), 'mcp');
    assert.equal(classifyMethod('server/discover', '2025-06-18'), 'other_era');
    assert.equal(classifyMethod('tasks/result', '2025-11-25'), 'mcp');
    assert.equal(classifyMethod('tasks/result', '2026-07-28'), 'other_era');
    assert.equal(classifyMethod('resources/subscribe', '2026-07-28'), 'other_era');
    assert.equal(classifyMethod('initialize', undefined), 'mcp');
    assert.equal(classifyMethod('initialize', '__proto__'), 'mcp');
    assert.equal(classifyMethod('vendor/thing', '2025-06-18'), 'unknown');
    assert.equal(classifyMethod('tools/calls', undefined), 'unknown');
  });

  it('finds lookalikes of MCP methods: case, whitespace, separators, confusables, invisible characters', () => {
    const spellings = [
      'Tools/call', 'TOOLS/CALL', 'tools/call ', ' tools/call', 'tools/ call', 'tools.call', 'tools_call', 'tools-call', 'tools\\call',
      'toolscall', 'tools//call', 'tools/call\u200b', 't\u200dools/call', '\ufefftools/call', 'ｔｏｏｌｓ/ｃａｌｌ', 't\u043eols/call', 'tool\u0455/call',
      'tools/c\u0430ll', 'tools\u2215call', 'tools/cal\u04cf', 'to\u0301ols/call', 'tools\tcall', 'tools\ncall',
    ];
    for (const m of spellings) {
      assert.equal(lookalikeOf(m), 'tools/call', JSON.stringify(m));
      assert.equal(classifyMethod(m, '2025-06-18'), 'lookalike', JSON.stringify(m));
    }
    assert.equal(lookalikeOf('Resources/Read'), 'resources/read');
    assert.equal(lookalikeOf('completion.complete'), 'completion/complete');
    assert.equal(lookalikeOf('Tools/List'), 'tools/list');
    assert.equal(lookalikeOf('tools/call'), undefined);
    assert.equal(lookalikeOf('tools/callx'), undefined);
    assert.equal(lookalikeOf('vendor/tools/call'), undefined);
  });

  it('list methods and the name field of their items', () => {
    assert.deepEqual(LIST_METHODS, {
      'tools/list': 'tools',
      'resources/list': 'resources',
      'prompts/list': 'prompts',
      'resources/templates/list': 'resourceTemplates',
    });
    assert.deepEqual(LIST_ITEM_NAME, { tools: 'name', prompts: 'name', resources: 'uri', resourceTemplates: 'uriTemplate' });
    assert.deepEqual(LIST_ITEM_KIND, { tools: 'name', prompts: 'name', resources: 'uri', resourceTemplates: 'template' });
    assert.equal(listItemName('tools', { name: 'echo' }), 'echo');
    assert.equal(listItemName('resources', { uri: 'file:///a', name: 'A' }), 'file:///a');
    assert.equal(listItemName('resourceTemplates', { uriTemplate: 'file:///{p}' }), 'file:///{p}');
    assert.equal(listItemName('prompts', { title: 'x' }), undefined);
    assert.equal(listItemName('tools', 'echo'), undefined);
  });
});
