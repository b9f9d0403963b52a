// Cedar policy sets of a given size for the cedar and cedar-proxy suites, shaped like a growing
// policy file: permits and forbids on tool-name globs, a few reading `resource.arguments.amount`,
// in both spellings the gate accepts (the README's `Action::"Forward"` / `Action::"Approve"` on
// `resource.tool_name`, and the original's code model `ThoughtGate::Action::"tools/call"` on
// `resource.name`). Every policy applies to tools/call, so "n policies" is what a call walks.

/** The first ten, then generated ones. `forwardEcho` replaces the first with one that forwards echo. */
const BASE = [
  '@id("forward-reads")\npermit(principal, action == Action::"Forward", resource)\nwhen { resource.tool_name like "get_*" };',
  '@id("no-admin")\nforbid(principal, action, resource)\nwhen { resource.tool_name like "admin_*" };',
  '@id("deploys-need-approval")\npermit(principal, action == ThoughtGate::Action::"tools/call", resource)\nwhen { resource.name like "deploy_*" };',
  '@id("big-transfer")\npermit(principal, action == Action::"Approve", resource)\nwhen { resource.tool_name == "transfer" && resource.arguments has amount && resource.arguments.amount > 100 };',
  '@id("small-transfer")\npermit(principal, action == Action::"Forward", resource)\nwhen { resource.tool_name == "transfer" && resource.arguments has amount && resource.arguments.amount <= 100 };',
  '@id("no-prod-deletes")\nforbid(principal, action == ThoughtGate::Action::"tools/call", resource)\nwhen { resource.name like "delete_*" && resource.server == "prod" };',
  '@id("deletes-need-approval")\npermit(principal, action == Action::"Approve", resource)\nwhen { resource.tool_name like "delete_*" };',
  '@id("no-drops")\nforbid(principal, action, resource)\nwhen { resource.tool_name like "drop_*" };',
  '@id("no-exec")\nforbid(principal, action == ThoughtGate::Action::"tools/call", resource)\nwhen { resource.name like "exec_*" };',
  '@id("forward-search")\npermit(principal, action == Action::"Forward", resource)\nwhen { resource.tool_name like "search_*" || resource.tool_name like "list_*" };',
];

/** Forwards echo only when it carries a non-negative amount: a policy that reads arguments. */
export const FORWARD_ECHO = '@id("forward-echo")\npermit(principal, action == Action::"Forward", resource)\nwhen { resource.tool_name == "echo" && resource.arguments has amount && resource.arguments.amount >= 0 };';

function generated(i) {
  switch (i % 5) {
    case 0: return `@id("svc${i}-reads")\npermit(principal, action == Action::"Forward", resource)\nwhen { resource.tool_name like "svc${i}_read_*" };`;
    case 1: return `@id("svc${i}-no-admin")\nforbid(principal, action, resource)\nwhen { resource.tool_name like "svc${i}_admin_*" };`;
    case 2: return `@id("svc${i}-deploys")\npermit(principal, action == ThoughtGate::Action::"tools/call", resource)\nwhen { resource.name like "svc${i}_deploy_*" };`;
    case 3: return `@id("svc${i}-no-prod-deletes")\nforbid(principal, action == ThoughtGate::Action::"tools/call", resource)\nwhen { resource.name like "svc${i}_delete_*" && resource.server == "prod" };`;
    default: return `@id("svc${i}-big-payments")\npermit(principal, action == Action::"Approve", resource)\nwhen { resource.tool_name == "svc${i}_pay" && resource.arguments has amount && resource.arguments.amount > ${i * 10} };`;
  }
}

/** n policies as one Cedar text. */
export function policySet(n, { forwardEcho = false } = {}) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(i < BASE.length ? BASE[i] : generated(i));
  if (forwardEcho) out[0] = FORWARD_ECHO;
  return out.join('\n\n') + '\n';
}

/** Tool names the in-process suite cycles through: some match a policy of each kind, some none. */
export const TOOLS = ['get_weather', 'transfer', 'delete_user', 'admin_reset', 'deploy_api', 'search_docs', 'svc10_read_x', 'drop_table', 'exec_shell', 'svc12_deploy_y', 'svc14_pay', 'summarise'];
