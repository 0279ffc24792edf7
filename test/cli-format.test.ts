import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readReferenceTensors } from './format-reference.ts';

const tmp = mkdtempSync(join(tmpdir(), 'df11-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function df11(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['bin/df11.mjs', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('df11 verify', () => {
  it('passes an official DF11 model against its original', () => {
    const r = df11('verify', 'test/fixtures/official-df11/tiny-qwen3', 'test/fixtures/hf/tiny-qwen3');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^OK +model\.layers\.1: 7 matrices, 55296 weights/m);
    expect(r.stdout).toMatch(/bit-identical/);
  });

  it('fails a copy with one sign/mantissa byte flipped', () => {
    const dir = join(tmp, 'tampered');
    cpSync('test/fixtures/official-df11/tiny-qwen3', dir, { recursive: true });
    const path = join(dir, 'model_layers_1.safetensors');
    const bytes = readFileSync(path);
    const n = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
    const [begin] = header['model.layers.1.sign_mantissa'].data_offsets as [number, number];
    bytes[8 + n + begin + 1234] ^= 0x40;
    writeFileSync(path, bytes);
    const r = df11('verify', dir, 'test/fixtures/hf/tiny-qwen3');
    expect(r.status).not.toBe(0);
    expect(r.stdout).toMatch(/^MISMATCH model\.layers\.1\.self_attn\.q_proj\.weight: 1 of 8192 weights differ \(first at 1234/m);
    expect(r.stdout).toMatch(/^FAILED: 1 mismatches/m);
  });
});

describe('df11 compress / decompress', () => {
  it('compress, verify, then decompress gives back the original tensors', () => {
    const out = join(tmp, 'micro-df11');
    const c = df11('compress', 'models/stories-micro', out);
    expect(c.status, c.stderr).toBe(0);
    expect(c.stderr).toMatch(/\[\d\/3\] model\.layers\.1: 101376 weights/);
    expect(c.stdout).toMatch(/^total +595968 +\d\d\.\d\d% +\d+\.\d{3}$/m);
    expect(readdirSync(out).sort()).toContain('model_layers_0.safetensors');
    expect(df11('compress', 'models/stories-micro', out).status).toBe(1); // not empty
    expect(df11('verify', out, 'models/stories-micro').status).toBe(0);
    const back = join(tmp, 'micro-back');
    const d = df11('decompress', out, back);
    expect(d.status, d.stderr).toBe(0);
    const ref = readReferenceTensors('models/stories-micro/model.safetensors');
    const got = readReferenceTensors(join(back, 'model.safetensors'));
    expect([...got.keys()].sort()).toEqual([...ref.keys()].sort());
    for (const [name, t] of ref) expect(got.get(name)!.bytes.equals(t.bytes), name).toBe(true);
  });

  it('compress + verify round trip on every architecture (units per layer as the checkpoint stores its linears)', () => {
    for (const name of ['tiny-gemma3-mixed', 'tiny-phi3', 'tiny-smollm3', 'tiny-mistral-swa']) {
      const out = join(tmp, `${name}-df11`);
      const c = df11('compress', `test/fixtures/hf/${name}`, out);
      expect(c.status, c.stderr).toBe(0);
      const v = df11('verify', out, `test/fixtures/hf/${name}`);
      expect(v.status, `${name}: ${v.stdout}`).toBe(0);
      expect(v.stdout).toMatch(/bit-identical/);
      const pattern = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).dfloat11_config.pattern_dict;
      const layerUnit = pattern['model\\.layers\\.\\d+'];
      expect(layerUnit, name).toEqual(
        name === 'tiny-phi3'
          ? ['self_attn.qkv_proj', 'self_attn.o_proj', 'mlp.gate_up_proj', 'mlp.down_proj']
          : ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'],
      );
    }
  });

  it('compress + verify round trip on Qwen3.5: one unit pattern per layer kind (Gated DeltaNet, gated attention)', () => {
    const out = join(tmp, 'qwen35-df11');
    const c = df11('compress', 'test/fixtures/hf/tiny-qwen3-5-text', out);
    expect(c.status, c.stderr).toBe(0);
    const v = df11('verify', out, 'test/fixtures/hf/tiny-qwen3-5-text');
    expect(v.status, v.stdout).toBe(0);
    expect(v.stdout).toMatch(/bit-identical/);
    const pattern = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).dfloat11_config.pattern_dict;
    expect(pattern['model\\.layers\\.(?:0|1|2)']).toEqual([
      'linear_attn.in_proj_qkv',
      'linear_attn.in_proj_z',
      'linear_attn.in_proj_b',
      'linear_attn.in_proj_a',
      'linear_attn.out_proj',
      'mlp.gate_proj',
      'mlp.up_proj',
      'mlp.down_proj',
    ]);
    expect(pattern['model\\.layers\\.(?:3)']).toEqual(['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj']);
  });

  it('reports bad input as a typed error', () => {
    const dir = join(tmp, 'qwen35-moe');
    cpSync('test/fixtures/hf/tiny-qwen3-5-text', dir, { recursive: true });
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, model_type: 'qwen3_5_moe_text' }));
    const r = df11('compress', dir, join(tmp, 'qwen35-moe-df11'));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/error \[unsupported-architecture\].*qwen3_5_moe_text/);
  });
});

describe('df11 build-models', () => {
  it('builds both models and an index, then skips when up to date', () => {
    const root = join(tmp, 'root');
    for (const m of ['stories-15m', 'stories-micro']) cpSync(`models/${m}`, join(root, 'models', m), { recursive: true });
    const first = df11('build-models', '--root', root);
    expect(first.status, first.stderr).toBe(0);
    const index = JSON.parse(readFileSync(join(root, 'public/models/index.json'), 'utf8'));
    expect(index.models.map((m: { name: string }) => m.name)).toEqual(['stories-15m-df11', 'stories-micro-df11']);
    for (const m of index.models) {
      const dir = join(root, 'public', m.path);
      expect(m.files.map((f: { name: string }) => f.name)).toEqual(readdirSync(dir).sort());
      for (const f of m.files) {
        const data = readFileSync(join(dir, f.name));
        expect(f.size).toBe(data.length);
        expect(f.sha256).toBe(createHash('sha256').update(data).digest('hex'));
      }
      expect(m.files.map((f: { name: string }) => f.name)).toContain('tokenizer.json');
    }
    expect(index.models[1].parameters).toBe(595968 + 5 * 96);
    expect(df11('verify', join(root, 'public/models/stories-15m-df11'), 'models/stories-15m').status).toBe(0);

    const second = df11('build-models', '--root', root);
    expect(second.stderr).toMatch(/stories-15m-df11: up to date/);
    expect(second.stderr).toMatch(/stories-micro-df11: up to date/);
    // the source gets a newer mtime than the built copy (explicit times: no clock involved)
    const built = join(root, 'public/models/stories-micro-df11/config.json');
    const builtAt = statSync(built).mtimeMs;
    const newer = new Date(builtAt + 60_000);
    utimesSync(join(root, 'models/stories-micro/config.json'), newer, newer);
    const third = df11('build-models', '--root', root);
    expect(third.stderr).toMatch(/stories-15m-df11: up to date/);
    expect(third.stderr).toMatch(/stories-micro-df11: 3 units/);
    expect(statSync(built).mtimeMs).not.toBe(builtAt);
  });
});
