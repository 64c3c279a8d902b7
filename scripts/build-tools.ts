// Builds the Go tools the deployment tests need (Helm, promtool) into the project cache unless
// they are there already. `.ci/run` calls it; on a developer machine the tests skip without them.
//   node --import tsx scripts/build-tools.ts [helm] [promtool]
import { GO_TOOLS, provisionGoTool, type GoTool } from '../src/provision/goTools';

async function main(): Promise<void> {
  const asked = process.argv.slice(2);
  const unknown = asked.filter((a) => !(a in GO_TOOLS));
  if (unknown.length) throw new Error(`unknown tool(s): ${unknown.join(', ')}; known: ${Object.keys(GO_TOOLS).join(', ')}`);
  const tools = (asked.length ? asked : Object.keys(GO_TOOLS)) as GoTool[];
  // One at a time: each build takes both cores for minutes.
  for (const tool of tools) console.log(`${tool}: ${await provisionGoTool(tool, (m) => console.log(m))}`);
}

main().catch((err: unknown) => {
  console.error(`build-tools: ${(err as Error).message}`);
  process.exit(1);
});
