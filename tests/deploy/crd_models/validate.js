// Validates Kubernetes custom resources with the kubernetes-models CRD packages, in two passes per object:
// - its class's validate(), the JSON schema generated from the operator's Go API types (types, enums, patterns,
//   required fields); those schemas leave additionalProperties open, so unknown fields pass it;
// - the TypeScript compiler's excess-property check of the object as a literal of the package's interface, which
//   refuses unknown fields (at least one per wrong object: TypeScript reports one error per branch it elaborates).
// Reads a JSON array of objects on stdin and writes one JSON line per object, in order:
// {apiVersion, kind, name, models, errors}. `models` lists the packages defining the kind (empty: no model, which the
// caller must treat as a failure); each error reads "data/<path> <message>".
import path from "node:path";
import { fileURLToPath } from "node:url";

import * as certManager from "@kubernetes-models/cert-manager";
import * as cloudnativePg from "@kubernetes-models/cloudnative-pg";
import * as keda from "@kubernetes-models/keda";
import * as prometheusOperator from "@kubernetes-models/prometheus-operator";
import ts from "typescript";

const PACKAGES = {
  "@kubernetes-models/cert-manager": certManager,
  "@kubernetes-models/cloudnative-pg": cloudnativePg,
  "@kubernetes-models/keda": keda,
  "@kubernetes-models/prometheus-operator": prometheusOperator,
};
// Module resolution starts from this directory, where node_modules is.
const SOURCE = path.join(path.dirname(fileURLToPath(import.meta.url)), "__render__.ts");

// "apiVersion kind" -> [[package, class], ...]: the packages nest classes as namespace -> group -> version -> class;
// a resource class carries static apiVersion and kind (the others are field types).
function collect(namespace, packageName, registry, seen = new Set()) {
  for (const value of Object.values(namespace)) {
    if (typeof value === "function" && typeof value.apiVersion === "string" && typeof value.kind === "string") {
      const key = `${value.apiVersion} ${value.kind}`;
      const entries = registry.get(key) ?? [];
      if (!entries.some(([, cls]) => cls === value)) entries.push([packageName, value]);
      registry.set(key, entries);
    } else if (value !== null && typeof value === "object" && !seen.has(value)) {
      seen.add(value);
      collect(value, packageName, registry, seen);
    }
  }
  return registry;
}

function schemaErrors(resource, entries) {
  const errors = [];
  for (const [, Model] of entries) {
    try {
      new Model(resource).validate();
    } catch (error) {
      if (!Array.isArray(error.errors)) throw error;
      for (const e of error.errors) errors.push(`data${e.instancePath} ${e.message}`);
    }
  }
  return errors;
}

// The JSON path of the innermost property or array element of `node` that contains `position`.
function pathAt(node, position) {
  const parts = [];
  const visit = (current) => {
    ts.forEachChild(current, (child) => {
      if (position < child.getStart() || position >= child.getEnd()) return;
      if (ts.isPropertyAssignment(child)) parts.push(child.name.text);
      if (ts.isArrayLiteralExpression(current)) parts.push(String(current.elements.indexOf(child)));
      visit(child);
      return true;
    });
  };
  visit(node);
  return parts.map((p) => `/${p}`).join("");
}

// Object index -> "data/<path> <message>" for every TypeScript diagnostic on the objects with a model.
function typeErrors(resources, models) {
  const imports = [];
  const statements = [];
  resources.forEach((resource, index) => {
    for (const [packageName] of models[index]) {
      const [group, version] = resource.apiVersion.split("/");
      const alias = `T${imports.length}`;
      imports.push(`import type { I${resource.kind} as ${alias} } from "${packageName}/${group}/${version}/${resource.kind}";`);
      statements.push([index, `export const r${statements.length}: ${alias} = ${JSON.stringify(resource)};`]);
    }
  });
  const errors = new Map();
  if (!statements.length) return errors;
  const text = [...imports, ...statements.map(([, s]) => s)].join("\n");
  const options = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    lib: ["lib.es5.d.ts"],
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
  };
  const host = ts.createCompilerHost(options);
  const source = ts.createSourceFile(SOURCE, text, ts.ScriptTarget.ES2022, true);
  const { getSourceFile, fileExists } = host;
  host.getSourceFile = (name, ...rest) => (name === SOURCE ? source : getSourceFile(name, ...rest));
  host.fileExists = (name) => name === SOURCE || fileExists(name);
  const program = ts.createProgram([SOURCE], options, host);
  const declarations = source.statements.filter(ts.isVariableStatement);
  for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, " ");
    const at = declarations.findIndex((d) => diagnostic.start >= d.getStart() && diagnostic.start < d.getEnd());
    // A diagnostic outside the objects (an import the package does not export) is a broken setup, not a finding.
    if (diagnostic.file !== source || at < 0) throw new Error(`TypeScript: ${message}`);
    const [index] = statements[at];
    const initializer = declarations[at].declarationList.declarations[0].initializer;
    errors.set(index, [...(errors.get(index) ?? []), `data${pathAt(initializer, diagnostic.start)} ${message}`]);
  }
  return errors;
}

const registry = new Map();
for (const [name, namespace] of Object.entries(PACKAGES)) collect(namespace, name, registry);

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const resources = JSON.parse(Buffer.concat(chunks).toString("utf8"));
if (!Array.isArray(resources)) throw new TypeError("stdin must hold a JSON array of objects");
const models = resources.map((r) => registry.get(`${r.apiVersion} ${r.kind}`) ?? []);
const unknown = typeErrors(resources, models);
resources.forEach((resource, index) => {
  const result = {
    apiVersion: resource.apiVersion,
    kind: resource.kind,
    name: resource.metadata?.name ?? null,
    models: models[index].map(([name]) => name),
    errors: [...schemaErrors(resource, models[index]), ...(unknown.get(index) ?? [])],
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
});
