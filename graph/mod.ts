/**
 * ONNX graph tools: model I/O, programmatic graph building and reverse-mode differentiation.
 *
 * @module
 */
export {
  buildGradientGraph,
  type GradientGraph,
  type GradientSpec,
  type ReluRule,
} from "./autodiff.ts";
export {
  attrFloat,
  type AttributeProto,
  attrInt,
  attrInts,
  attrString,
  type AttrValue,
  type ElemType,
  getAttr,
  GraphBuilder,
  makeAttribute,
  makeModel,
  makeTensor,
  makeValueInfo,
  type ModelParts,
  type NodeOptions,
  type TensorProto,
  tensorValues,
  type ValueInfoProto,
} from "./builder.ts";
export * from "./onnx_io.ts";
