/**
 * A CPU forward (f64) of the same math as src/model/forward.ts for plain Llama models (no q/k/v bias, no
 * q/k norm): the long-context reference of test/conformance-long-context.test.ts. Weights come from the
 * model's BF16 tensors; RoPE uses the same cos/sin table as the GPU. Logits of the last token of each step.
 */
import type { ModelWeights } from '../src/format/model-reader.ts';
import { ropeTable, type RopeFrequencyPrecision } from '../src/model/rope-table.ts';

type Matrix = { rows: number; cols: number; w: Float64Array };

export class CpuForward {
  private readonly k: Float64Array[]; // per layer (n_kv_heads, max_seq, head_dim)
  private readonly v: Float64Array[];
  private readonly cosSin: Float32Array;

  private constructor(
    private readonly model: ModelWeights,
    private readonly maxSeq: number,
    private readonly m: Map<string, Matrix>,
    precision: RopeFrequencyPrecision,
  ) {
    const { numLayers, numKvHeads, headDim } = model.spec;
    this.k = Array.from({ length: numLayers }, () => new Float64Array(numKvHeads * maxSeq * headDim));
    this.v = Array.from({ length: numLayers }, () => new Float64Array(numKvHeads * maxSeq * headDim));
    this.cosSin = ropeTable(model.spec.ropes[0]!, maxSeq, precision);
  }

  static async create(model: ModelWeights, maxSeq: number, precision: RopeFrequencyPrecision): Promise<CpuForward> {
    const s = model.spec;
    if (s.attentionBias || s.qkNorm || s.architecture !== 'llama' || s.ropes.length !== 1 || s.ropes[0]!.rotaryDim !== s.headDim) throw new Error('CpuForward covers plain Llama models only');
    const names = ['model.embed_tokens.weight', 'model.norm.weight', s.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight'];
    for (let l = 0; l < s.numLayers; l++) {
      for (const p of ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj', 'input_layernorm', 'post_attention_layernorm']) {
        names.push(`model.layers.${l}.${p}.weight`);
      }
    }
    const m = new Map<string, Matrix>();
    for (const name of names) {
      const t = await model.readTensor(name, 'BF16');
      const bits = new Uint16Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 2);
      const w = Float64Array.from(new Float32Array(Uint32Array.from(bits, (b) => b << 16).buffer));
      m.set(name, { rows: t.shape[0]!, cols: t.shape.length > 1 ? t.shape[1]! : 1, w });
    }
    return new CpuForward(model, maxSeq, m, precision);
  }

  /** Run token `id` at position `pos` (its K/V go to the cache); logits when asked.  (vocab) */
  step(id: number, pos: number, wantLogits: boolean): Float64Array | undefined {
    const s = this.model.spec;
    const { hiddenSize: h, numHeads: nH, numKvHeads: nKv, headDim: hd } = s;
    const w = (name: string): Matrix => this.m.get(name)!;
    const x = w('model.embed_tokens.weight').w.slice(id * h, (id + 1) * h);
    for (let l = 0; l < s.numLayers; l++) {
      const p = `model.layers.${l}.`;
      const xb = rmsnorm(x, w(`${p}input_layernorm.weight`).w, s.rmsNormEps);
      const q = this.rope(matvec(w(`${p}self_attn.q_proj.weight`), xb), nH, pos);
      const k = this.rope(matvec(w(`${p}self_attn.k_proj.weight`), xb), nKv, pos);
      const v = matvec(w(`${p}self_attn.v_proj.weight`), xb);
      for (let kh = 0; kh < nKv; kh++) {
        this.k[l]!.set(k.subarray(kh * hd, (kh + 1) * hd), (kh * this.maxSeq + pos) * hd);
        this.v[l]!.set(v.subarray(kh * hd, (kh + 1) * hd), (kh * this.maxSeq + pos) * hd);
      }
      const att = new Float64Array(nH * hd);
      for (let hh = 0; hh < nH; hh++) {
        const base = Math.floor(hh / (nH / nKv)) * this.maxSeq * hd;
        const scores = new Float64Array(pos + 1);
        for (let t = 0; t <= pos; t++) {
          let d = 0;
          for (let i = 0; i < hd; i++) d += q[hh * hd + i]! * this.k[l]![base + t * hd + i]!;
          scores[t] = d / Math.sqrt(hd);
        }
        const mx = Math.max(...scores);
        let sum = 0;
        for (let t = 0; t <= pos; t++) sum += (scores[t] = Math.exp(scores[t]! - mx));
        for (let t = 0; t <= pos; t++) {
          for (let i = 0; i < hd; i++) att[hh * hd + i]! += (scores[t]! / sum) * this.v[l]![base + t * hd + i]!;
        }
      }
      addInto(x, matvec(w(`${p}self_attn.o_proj.weight`), att));
      const xm = rmsnorm(x, w(`${p}post_attention_layernorm.weight`).w, s.rmsNormEps);
      const gate = matvec(w(`${p}mlp.gate_proj.weight`), xm);
      const up = matvec(w(`${p}mlp.up_proj.weight`), xm);
      const hb = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]!);
      addInto(x, matvec(w(`${p}mlp.down_proj.weight`), hb));
    }
    if (!wantLogits) return undefined;
    const head = s.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
    return matvec(w(head), rmsnorm(x, w('model.norm.weight').w, s.rmsNormEps));
  }

  private rope(vec: Float64Array, heads: number, pos: number): Float64Array {
    const hd = this.model.spec.headDim;
    const half = hd / 2;
    const out = new Float64Array(vec.length);
    for (let hh = 0; hh < heads; hh++) {
      for (let i = 0; i < half; i++) {
        const c = this.cosSin[(pos * half + i) * 2]!;
        const sn = this.cosSin[(pos * half + i) * 2 + 1]!;
        const [x1, x2] = [vec[hh * hd + i]!, vec[hh * hd + i + half]!];
        out[hh * hd + i] = x1 * c - x2 * sn;
        out[hh * hd + i + half] = x2 * c + x1 * sn;
      }
    }
    return out;
  }
}

function matvec(m: Matrix, x: Float64Array): Float64Array {
  const out = new Float64Array(m.rows);
  for (let r = 0; r < m.rows; r++) {
    let a = 0;
    for (let c = 0; c < m.cols; c++) a += m.w[r * m.cols + c]! * x[c]!;
    out[r] = a;
  }
  return out;
}

function rmsnorm(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const r = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * r * w[i]!);
}

function addInto(x: Float64Array, y: Float64Array): void {
  for (let i = 0; i < x.length; i++) x[i]! += y[i]!;
}
