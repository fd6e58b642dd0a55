/// The Python globals a checkpoint pickle may name, and what "calling" each one means here.
///
/// Nothing is imported or executed. Tensor rebuilders become `TensorRecord`s, `OrderedDict` becomes
/// a dict, and every other allowlisted global (numpy arrays, mmengine/mmcv/mmseg classes, `getattr`, …)
/// yields an inert opaque object whose arguments are kept but never interpreted. Any global not listed
/// is rejected with an error naming it, so `os.system`, `builtins.eval`, `subprocess.Popen` and the
/// like cannot even be referenced.
enum PickleGlobals {
    static let storageTypes: [String: DType] = [
        "FloatStorage": .float32, "DoubleStorage": .float64, "HalfStorage": .float16,
        "BFloat16Storage": .bfloat16, "LongStorage": .int64, "IntStorage": .int32,
        "ShortStorage": .int16, "CharStorage": .int8, "ByteStorage": .uint8, "BoolStorage": .bool,
        "UntypedStorage": .uint8,
    ]

    /// Exact `module.name` pairs accepted besides storage types and the package prefixes below.
    static let exact: Set<String> = [
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
        "torch._tensor._rebuild_from_type_v2", "torch.Tensor", "torch.nn.parameter.Parameter",
        "torch.device", "torch.Size",
        "torch.float32", "torch.float64", "torch.float16", "torch.bfloat16", "torch.int64",
        "torch.int32", "torch.int16", "torch.int8", "torch.uint8", "torch.bool",
        "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
        "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
        "numpy.ndarray", "numpy.dtype",
        "_codecs.encode",
        "builtins.getattr", "__builtin__.getattr", "builtins.set", "__builtin__.set",
        "builtins.frozenset", "__builtin__.frozenset", "builtins.slice", "__builtin__.slice",
    ]

    /// Packages whose classes may appear as opaque objects (training state of a runner-style file).
    static let opaquePackages = ["mmengine", "mmseg", "mmcv", "numpy.dtypes"]

    static let rejectionHint = "AerialSeg never runs code from checkpoints; re-save the state_dict with torch.save "
        + "or export safetensors"

    /// The value a GLOBAL / STACK_GLOBAL opcode pushes, or an error naming a forbidden global.
    static func resolve(module: String, name: String) throws -> PickleValue {
        let full = "\(module).\(name)"
        if exact.contains(full) { return .global(module: module, name: name) }
        if (module == "torch" || module == "torch.storage"), storageTypes[name] != nil {
            return .global(module: module, name: name)
        }
        let isIdentifier = !name.isEmpty && name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }
        if isIdentifier, opaquePackages.contains(where: { module == $0 || module.hasPrefix($0 + ".") }) {
            return .global(module: module, name: name)
        }
        throw FormatFailure("checkpoint references the Python global `\(full)`", hint: rejectionHint)
    }

    /// REDUCE: `callable(*args)`, interpreted without executing anything.
    static func call(_ callable: PickleValue, _ args: PickleValue, arena: inout PickleArena) throws -> PickleValue {
        guard case .global(let module, let name) = callable else {
            if case .object = callable {
                // e.g. getattr(...) result being called: stays opaque.
                arena.objects.append(PickleObject(type: "call", args: args))
                return .object(arena.objects.count - 1)
            }
            throw FormatFailure("pickle calls a \(callable.typeName), which is not callable")
        }
        guard case .tuple(let argIndex) = args else {
            throw FormatFailure("pickle REDUCE arguments are a \(args.typeName), not a tuple")
        }
        let items = arena.tuples[argIndex]
        switch "\(module).\(name)" {
        case "collections.OrderedDict":
            var dict = PickleDict()
            if let first = items.first, let pairs = arena.sequence(first) {
                for pair in pairs {
                    guard let kv = arena.sequence(pair), kv.count == 2 else {
                        throw FormatFailure("OrderedDict() argument is not a sequence of pairs")
                    }
                    dict.set(kv[0], kv[1])
                }
            }
            arena.dicts.append(dict)
            return .dict(arena.dicts.count - 1)
        case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
            return try rebuildTensor(items, arena: &arena)
        case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
            guard let data = items.first else { throw FormatFailure("_rebuild_parameter without data") }
            return data
        case "torch._tensor._rebuild_from_type_v2":
            // (func, new_type, args, state): rebuild with func(*args), drop the Python subclass.
            guard items.count >= 3 else { throw FormatFailure("_rebuild_from_type_v2 needs 3 arguments") }
            if case .global(let m, let n) = items[0], m == "torch._utils", n.hasPrefix("_rebuild_tensor") {
                return try call(items[0], items[2], arena: &arena)
            }
            throw FormatFailure("_rebuild_from_type_v2 with an unsupported rebuild function")
        case "torch.Size":
            return items.first ?? .none
        case "_codecs.encode":
            if items.count == 2, case .string(let text) = items[0], case .string(let encoding) = items[1],
               ["latin1", "latin-1", "iso-8859-1"].contains(encoding.lowercased()) {
                var out: [UInt8] = []
                for scalar in text.unicodeScalars {
                    guard scalar.value < 256 else {
                        throw FormatFailure("_codecs.encode: text is not latin-1")
                    }
                    out.append(UInt8(scalar.value))
                }
                return .bytes(out)
            }
            fallthrough
        default:
            arena.objects.append(PickleObject(type: "\(module).\(name)", args: args))
            return .object(arena.objects.count - 1)
        }
    }

    /// `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks[, metadata])`.
    private static func rebuildTensor(_ items: [PickleValue], arena: inout PickleArena) throws -> PickleValue {
        guard items.count >= 4, case .storage(let storage) = items[0], case .int(let offset) = items[1],
              let size = arena.ints(items[2]), let stride = arena.ints(items[3])
        else {
            throw FormatFailure("malformed tensor record (_rebuild_tensor arguments)")
        }
        guard size.count == stride.count, offset >= 0 else {
            throw FormatFailure("tensor record has size \(size), stride \(stride), offset \(offset)")
        }
        arena.tensors.append(TensorRecord(storage: storage, offset: offset, size: size, stride: stride))
        return .tensor(arena.tensors.count - 1)
    }
}
