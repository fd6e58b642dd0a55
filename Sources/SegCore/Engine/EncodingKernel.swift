import Foundation

extension Kernels {
    /// EncNet's Encoding layer (mmseg `models/utils/encoding.py`) followed by BatchNorm1d over the
    /// codes, ReLU and the mean over the codes (`EncModule`'s `encoding(...).mean(dim=1)`).
    ///
    /// x is (N,C,H,W), read as X (N, H·W, C); codewords (K,C); out is (N,C,1,1):
    /// ```
    /// d2[n,i,k] = Σ_c (X[n,i,c] - cw[k,c])²                 direct form, as mmseg's scaled_l2
    /// A[n,i,:]  = softmax_k(scale[k] · d2[n,i,k])
    /// E[n,k,c]  = Σ_i A[n,i,k] · (X[n,i,c] - cw[k,c])
    /// out[n,c]  = mean_k relu(bnScale[k] · E[n,k,c] + bnShift[k])
    /// ```
    /// Sums are accumulated in Double; the (X - cw)² form avoids the cancellation of |x|² - 2x·c + |c|².
    public static func encoding(_ x: Tensor, _ spec: EncodingSpec) -> Tensor {
        let s = shape4(x, .encoding)
        let k = spec.numCodes, c = spec.channels, hw = s.h * s.w
        precondition(s.c == c, "encoding: input has \(s.c) channels, codewords \(spec.codewords.shape)")
        let cw = spec.codewords.data
        var out = [Float](repeating: 0, count: s.n * c)
        var pixel = [Double](repeating: 0, count: c)
        var logits = [Double](repeating: 0, count: k)
        var assign = [Float](repeating: 0, count: k)
        for n in 0..<s.n {
            let base = n * c * hw
            var e = [Double](repeating: 0, count: k * c)
            for i in 0..<hw {
                for ch in 0..<c { pixel[ch] = Double(x.data[base + ch * hw + i]) }
                for code in 0..<k {
                    var d2 = 0.0
                    for ch in 0..<c {
                        let d = Double(Float(pixel[ch]) - cw[code * c + ch])
                        d2 += d * d
                    }
                    logits[code] = Double(spec.scale[code]) * Double(Float(d2))
                }
                let m = logits.max() ?? 0
                var sum = 0.0
                for code in 0..<k {
                    let v = exp(logits[code] - m)
                    logits[code] = v
                    sum += v
                }
                for code in 0..<k { assign[code] = Float(logits[code] / sum) }
                for code in 0..<k {
                    let a = Double(assign[code])
                    for ch in 0..<c {
                        e[code * c + ch] += a * Double(Float(pixel[ch]) - cw[code * c + ch])
                    }
                }
            }
            for ch in 0..<c {
                var mean = 0.0
                for code in 0..<k {
                    let v = Float(e[code * c + ch]) * spec.bnScale[code] + spec.bnShift[code]
                    mean += Double(max(v, 0))
                }
                out[n * c + ch] = Float(mean / Double(k))
            }
        }
        return Tensor(shape: [s.n, c, 1, 1], data: out)
    }
}
