import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GOVERNED_METHODS, isGoverned, LIST_ITEM_NAME, LIST_METHODS, listItemName, resourceFieldOf, resourceNameOf } from './governable.js';

describe('governable methods', () => {
  it('names the resource of each governed method', () => {
    assert.equal(resourceNameOf('tools/call', { name: 'echo', arguments: {} }), 'echo');
    assert.equal(resourceNameOf('resources/read', { uri: 'file:///x' }), 'file:///x');
    assert.equal(resourceNameOf('resources/subscribe', { uri: 'file:///y' }), 'file:///y');
    assert.equal(resourceNameOf('prompts/get', { name: 'greet' }), 'greet');
  });

  it('undefined for other methods and for missing or non-string names', () => {
    assert.equal(resourceNameOf('tools/list', { name: 'x' }), undefined);
    assert.equal(resourceNameOf('initialize', {}), undefined);
    assert.equal(resourceNameOf('resources/unsubscribe', { uri: 'u' }), undefined);
    assert.equal(resourceNameOf('tools/call', {}), undefined);
    assert.equal(resourceNameOf('tools/call', { name: 42 }), undefined);
    assert.equal(resourceNameOf('tools/call', undefined), undefined);
    assert.equal(resourceNameOf('tools/call', null), undefined);
    assert.equal(resourceNameOf('resources/read', { name: 'x' }), undefined);
  });

  it('exposes the method table', () => {
    assert.deepEqual([...GOVERNED_METHODS.keys()].sort(), ['prompts/get', 'resources/read', 'resources/subscribe', 'tools/call']);
    assert.equal(isGoverned('tools/call'), true);
    assert.equal(isGoverned('completion/complete'), false);
    assert.equal(resourceFieldOf('resources/read'), 'uri');
    assert.equal(resourceFieldOf('tools/list'), undefined);
  });

  it('list methods and the name field of their items', () => {
    assert.deepEqual(LIST_METHODS, {
      'tools/list': 'tools',
      'resources/list': 'resources',
      'prompts/list': 'prompts',
      'resources/templates/list': 'resourceTemplates',
    });
    assert.deepEqual(LIST_ITEM_NAME, { tools: 'name', prompts: 'name', resources: 'uri', resourceTemplates: 'uriTemplate' });
    assert.equal(listItemName('tools', { name: 'echo' }), 'echo');
    assert.equal(listItemName('resources', { uri: 'file:///a', name: 'A' }), 'file:///a');
    assert.equal(listItemName('resourceTemplates', { uriTemplate: 'file:///{p}' }), 'file:///{p}');
    assert.equal(listItemName('prompts', { title: 'x' }), undefined);
    assert.equal(listItemName('tools', 'echo'), undefined);
  });
});
