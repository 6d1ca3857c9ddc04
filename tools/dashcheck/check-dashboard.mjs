// Type-checks Grafana dashboard JSON files against the official @grafana/schema TypeScript types.
//
// Usage: node check-dashboard.mjs <dashboard.json>...   (run `npm ci` in this folder first)
// Exit status: 0 when every file checks, 1 on any error (tsc prints one line per problem).
//
// The package ships `.d.ts` types, not a JSON schema, so each dashboard is embedded as an object
// literal with `satisfies`: excess-property (typo) and literal checks included. JSON has no
// TypeScript enums, so enum-typed fields accept the enum's *values*; Grafana fills omitted panel
// options with defaults, so options are deep-partial. A file shaped for export-for-sharing
// (`__inputs`) is rejected: file provisioning does not resolve those placeholders.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const modules = path.join(here, 'node_modules');
const tsc = path.join(modules, 'typescript', 'bin', 'tsc');
if (!fs.existsSync(tsc) || !fs.existsSync(path.join(modules, '@grafana', 'schema'))) {
  console.error(`${modules} is missing or incomplete: run \`npm ci --prefix ${path.relative(process.cwd(), here) || '.'}\` first`);
  process.exit(1);
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node check-dashboard.mjs <dashboard.json>...');
  process.exit(1);
}

const S = '@grafana/schema/dist/esm/raw/composable';
const header = `import type { Dashboard, DataQuery, Panel, RowPanel, FieldConfig, FieldConfigSource } from '@grafana/schema';
import type { Options as TSOpts, FieldConfig as TSField } from '${S}/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';
import type { Options as StatOpts } from '${S}/stat/panelcfg/x/StatPanelCfg_types.gen';
import type { Options as GaugeOpts } from '${S}/gauge/panelcfg/x/GaugePanelCfg_types.gen';
import type { Options as BarGaugeOpts } from '${S}/bargauge/panelcfg/x/BarGaugePanelCfg_types.gen';
import type { Options as TableOpts, FieldConfig as TableField } from '${S}/table/panelcfg/x/TablePanelCfg_types.gen';
import type { Options as TextOpts } from '${S}/text/panelcfg/x/TextPanelCfg_types.gen';
import type { Options as TimelineOpts, FieldConfig as TimelineField } from '${S}/statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen';
type Json<T> = T extends string ? \`\${T}\` : T extends number | boolean | null | undefined ? T
  : T extends Array<infer U> ? Array<Json<U>> : T extends object ? { [K in keyof T]: Json<T[K]> } : T;
type DP<T> = T extends Array<infer U> ? Array<DP<U>> : T extends object ? { [K in keyof T]?: DP<T[K]> } : T;
type PromQuery = DataQuery & { expr: string; legendFormat?: string; instant?: boolean; range?: boolean;
  interval?: string; format?: 'time_series' | 'table' | 'heatmap'; editorMode?: 'code' | 'builder'; exemplar?: boolean };
type Base = Omit<Panel, 'targets' | 'options' | 'fieldConfig' | 'type'> & { targets?: PromQuery[] };
type FC<C> = Omit<FieldConfigSource, 'defaults'> & { defaults: Omit<FieldConfig, 'custom'> & { custom?: DP<C> } };
type Typed<T extends string, O, C = Record<string, unknown>> = Base & { type: T; options?: DP<O>; fieldConfig?: FC<C> };
type AnyPanel = Typed<'timeseries', TSOpts, TSField> | Typed<'stat', StatOpts> | Typed<'gauge', GaugeOpts>
  | Typed<'bargauge', BarGaugeOpts>
  | Typed<'table', TableOpts, TableField> | Typed<'text', TextOpts>
  | Typed<'state-timeline', TimelineOpts, TimelineField> | RowPanel;
type Dash = Json<Omit<Dashboard, 'panels'> & { panels?: AnyPanel[] }>;
`;

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dashcheck-'));
let failed = false;
try {
  fs.symlinkSync(modules, path.join(work, 'node_modules'), 'dir');
  const sources = [];
  for (const [index, file] of files.entries()) {
    let json;
    try {
      json = JSON.parse(fs.readFileSync(file, 'utf8')); // plain JSON syntax first
    } catch (err) {
      console.error(`${file}: ${err.message}`);
      failed = true;
      continue;
    }
    if ('__inputs' in json) {
      console.error(`${file}: has "__inputs" (an export for sharing); provisioned dashboards must not`);
      failed = true;
      continue;
    }
    // One module per dashboard; the comment maps tsc's file name back to the dashboard.
    const source = path.join(work, `dashboard${index}.check.ts`);
    fs.writeFileSync(source, `// ${file}\n${header}export const dashboard = ${JSON.stringify(json, null, 2)} satisfies Dash;\n`);
    sources.push([file, source]);
  }
  if (sources.length > 0) {
    try {
      execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--skipLibCheck', '--target', 'es2022',
        '--module', 'esnext', '--moduleResolution', 'bundler', '--pretty', 'false',
        ...sources.map(([, source]) => source)], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
      for (const [file] of sources) console.log(`${file}: OK (@grafana/schema Dashboard)`);
    } catch (err) {
      // Name the dashboard instead of the generated file in each error line.
      let out = `${err.stdout ?? ''}${err.stderr ?? ''}`;
      for (const [file, source] of sources) out = out.split(path.basename(source)).join(`${file} (as TypeScript)`);
      console.error(out.trim() || err.message);
      failed = true;
    }
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
