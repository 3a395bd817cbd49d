"""`qxai analyze --hf-model` on tiny local BERTs built here (no downloads): binary classifier, a model
without a classification head, real texts through the model's own tokenizer, special-token ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from qxai.cli.main import main

WORDS = ["the", "a", "cat", "dog", "sat", "on", "mat", "good", "bad", "film", "movie", "was", "is", "very"]
WORDS += ["not"]


def _save_bert(folder: Path, num_labels: int | None, vocab_order: list[str]) -> Path:
    """A tiny random BERT (classifier with `num_labels`, or a bare BertModel) with its tokenizer."""
    from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizer(vocab={word: i for i, word in enumerate(vocab_order)})
    config = BertConfig(
        vocab_size=len(vocab_order), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=40, num_labels=num_labels or 2,
        pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    model = BertForSequenceClassification(config) if num_labels else BertModel(config)
    if num_labels == 2:
        model.config.id2label, model.config.label2id = {0: "neg", 1: "pos"}, {"neg": 0, "pos": 1}
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# special tokens deliberately not at BERT's usual ids: [PAD] 3, [CLS] 5 (id 1 is an ordinary word)
VOCAB = ["the", "[UNK]", "a", "[PAD]", "cat", "[CLS]", "[SEP]", "[MASK]", *WORDS[2:]]


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()  # drop what building the model printed
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return exit_info.value.code or 0, captured.out, captured.err


def test_binary_classifier_probe_gives_n_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _save_bert(tmp_path / "bin", 2, VOCAB)
    out = tmp_path / "out"
    code, _, err = _run(
        ["analyze", "--hf-model", str(model), "--samples", "12", "--mi-permutations", "0",
         "--bootstrap", "20", "--ig-examples", "3", "--ig-steps", "8", "--out", str(out)],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads((out / "analysis.json").read_text())
    assert doc["samples"] == 12
    assert doc["source"]["pad_token_id"] == 3 and doc["source"]["cls_token_id"] == 5
    ig = doc["integrated_gradients"]
    assert ig["examples"] == 3 and set(ig["targets"]) <= {0, 1}
    arrays = __import__("numpy").load(out / "analysis.npz")
    assert arrays["ig/attributions"].shape[0] == 3


def test_probe_sequences_use_the_models_special_ids() -> None:
    from qxai.data.sequences import probe_sequences

    d = probe_sequences(50, 10, len(VOCAB), pad_id=3, cls_id=5, special_ids=(1, 3, 5, 6, 7), seed=0)
    assert (d.inputs[:, 0] == 5).all()
    body = d.inputs[:, 1:][d.mask[:, 1:] == 1]
    assert not torch.isin(body, torch.tensor([1, 3, 5, 6, 7])).any()
    assert (d.inputs[d.mask == 0] == 3).all()


def test_model_without_head_skips_ig_and_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _save_bert(tmp_path / "base", None, VOCAB)
    out = tmp_path / "out"
    code, stdout, err = _run(
        ["analyze", "--hf-model", str(model), "--samples", "10", "--mi-permutations", "0", "--bootstrap", "0",
         "--out", str(out)],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads((out / "analysis.json").read_text())
    assert doc["source"]["classification_head"] is False
    assert doc["integrated_gradients"] == {"skipped": "no classification head"}
    assert "layer2" in doc["layers"] and "attention_entropy" in doc["layers"]
    assert "integrated_gradients.png" not in {f["file"] for f in doc["figures"]}
    assert "no classification head" in stdout


@pytest.mark.parametrize("kind", ["lines", "csv", "tsv"])
def test_texts_file_tokenised_by_the_models_tokenizer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    model = _save_bert(tmp_path / "bin", 2, VOCAB)
    texts = ["the cat sat on the mat", "a very good film", "the movie was bad", "not a good dog"] * 3
    labels = ["neg", "pos", "neg", "1"] * 3
    if kind == "lines":
        file = tmp_path / "texts.txt"
        file.write_text("\n".join(texts) + "\n")
    else:
        sep = "," if kind == "csv" else "\t"
        file = tmp_path / f"texts.{kind}"
        file.write_text(
            f"label{sep}text\n" + "".join(f"{lab}{sep}{t}\n" for lab, t in zip(labels, texts, strict=True))
        )
    out = tmp_path / "out"
    code, _, err = _run(
        ["analyze", "--hf-model", str(model), "--texts", str(file), "--samples", "10",
         "--mi-permutations", "0", "--bootstrap", "0", "--ig-examples", "2", "--ig-steps", "8",
         "--out", str(out)],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads((out / "analysis.json").read_text())
    assert doc["samples"] == 10 and "texts from" in doc["source"]["inputs"]
    from qxai.analysis.subjects import SubjectSource, load_subject

    subject = load_subject(SubjectSource(hf_model=str(model), texts=str(file)), samples=10)
    assert subject.tokens[0][0] == "[CLS]" and subject.tokens[0][1:3] == ["the", "cat"]
    assert int(subject.inputs[0, 0]) == 5  # [CLS] is id 5 in this vocabulary, not a constant 1
    if kind == "lines":
        assert (subject.labels == -1).all()
    else:
        assert subject.labels.tolist()[:4] == [0, 1, 0, 1]


def test_texts_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _save_bert(tmp_path / "bin", 2, VOCAB)
    bad = tmp_path / "bad.csv"
    bad.write_text("label,body\npos,hello\n")
    code, _, err = _run(
        ["analyze", "--hf-model", str(model), "--texts", str(bad), "--out", str(tmp_path / "o")], capsys
    )
    assert code == 2 and err.startswith("error: ") and "'text' column" in err and err.count("\n") == 1
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("text,label\nhello,maybe\n")
    code, _, err = _run(
        ["analyze", "--hf-model", str(model), "--texts", str(wrong), "--out", str(tmp_path / "o")], capsys
    )
    assert code == 2 and "label 'maybe'" in err
    code, _, err = _run(
        ["analyze", "--builtin", "lstm", "--texts", str(wrong), "--out", str(tmp_path / "o")], capsys
    )
    assert code == 2 and "--texts needs --hf-model" in err
