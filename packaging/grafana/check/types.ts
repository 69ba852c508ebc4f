// The type a tortie dashboard must satisfy: Grafana's published dashboard
// schema (@grafana/schema, generated from Grafana's CUE kinds), narrowed per
// panel type to that panel plugin's own Options and FieldConfig types, so a
// misspelt key anywhere in tortie.json fails `tsc` (excess property check).
//
// Data flow: agent/tests/observability.rs writes the dashboard JSON as a
// TypeScript literal typed `CheckedDashboard` and runs this directory's tsc.
import type { DataQuery } from '@grafana/schema';
import type {
  DataSourceRef,
  Dashboard as RawDashboard,
  FieldConfigSource,
  Panel as RawPanel,
  RowPanel as RawRowPanel,
  VariableModel,
} from '@grafana/schema/dist/esm/raw/dashboard/x/Dashboard_types.gen';
import type * as stat from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type * as timeseries from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';

// Prometheus' query model is not in @grafana/schema (the data source is a core
// plugin); these are the fields Grafana's Prometheus query editor saves.
export interface PrometheusQuery extends DataQuery {
  datasource?: DataSourceRef;
  expr: string;
  legendFormat?: string;
  instant?: boolean;
  range?: boolean;
  format?: 'time_series' | 'table' | 'heatmap';
  interval?: string;
  intervalFactor?: number;
  editorMode?: 'code' | 'builder';
  exemplar?: boolean;
}

// Grafana's generated types use TypeScript enums (`LegendDisplayMode.List`);
// the JSON holds their values (`"list"`). Json<T> is T with every string enum
// replaced by the union of its values (numeric enums accept their numbers).
type Json<T> = T extends string
  ? `${T}`
  : T extends Array<infer U>
    ? Array<Json<U>>
    : T extends object
      ? { [K in keyof T]: Json<T[K]> }
      : T;

type PanelOf<Type extends string, Options, Custom> = Omit<RawPanel, 'type' | 'options' | 'fieldConfig' | 'targets'> & {
  type: Type;
  options?: Json<Options>;
  fieldConfig?: Json<Omit<FieldConfigSource, 'defaults'>> & {
    defaults: Json<Omit<FieldConfigSource['defaults'], 'custom'>> & { custom?: Json<Custom> };
  };
  targets?: PrometheusQuery[];
};

export type StatPanel = PanelOf<'stat', stat.Options, Record<string, never>>;
export type TimeSeriesPanel = PanelOf<'timeseries', timeseries.Options, timeseries.FieldConfig>;
export type CheckedPanel = StatPanel | TimeSeriesPanel;
export type CheckedRow = Json<Omit<RawRowPanel, 'panels'>> & { panels: CheckedPanel[] };

// The `__inputs` block of Grafana's export format ("Export for sharing
// externally"): what the import dialog asks for.
export interface ExportInput {
  name: string;
  label: string;
  description?: string;
  type: 'datasource';
  pluginId: string;
  pluginName: string;
}

export type CheckedDashboard = Json<Omit<RawDashboard, 'panels' | 'templating'>> & {
  __inputs?: ExportInput[];
  panels: Array<CheckedPanel | CheckedRow>;
  templating?: { list?: Array<Json<Omit<VariableModel, 'query'>> & { query?: string | { query: string; refId: string } }> };
};
