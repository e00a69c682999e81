"""nnctl explain, gradcheck, lr-find, trace, gd, schema, datasets and init."""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from nnctl.cli.app import (
    QUIET_FINDINGS,
    ConfigArg,
    Decimal,
    JsonOpt,
    QuietOpt,
    SetOpt,
    app,
    handle_errors,
    output_option,
    plot_option,
    print_json,
    show,
    write_output,
)


class Lang(str, enum.Enum):
    en = "en"
    vi = "vi"


def _topics(incomplete: str) -> list[str]:
    """Shell completion of explain's TOPIC: every concept and finding code."""
    from nnctl.concepts import TOPICS, all_codes

    return [t for t in (*TOPICS, *all_codes()) if t.lower().startswith(incomplete.lower())]


@app.command()
@handle_errors
def explain(
    topic: Annotated[str | None, typer.Argument(metavar="TOPIC", help="A concept (relu, xavier, batch_norm, "
                                                "backprop, sgd, ...) or a finding code (DEAD_RELU, ...). Omit it "
                                                "to list them all.", show_default=False, autocompletion=_topics)
                     ] = None,
    lang: Annotated[Lang, typer.Option("--lang", "-l", envvar="NNCTL_LANG", show_envvar=True, case_sensitive=False,
                                       help="Language: en (English) or vi (tiếng Việt).")] = Lang.en,
    list_: Annotated[bool, typer.Option("--list", help="List every concept and finding code.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="The page as one JSON document, by part (title, what, "
                                           "formula, ...; for a code: explain, why, try).")] = False,
    quiet: QuietOpt = 0,
):
    """Explain a concept of the course or a finding code in plain words, in English or Vietnamese.

    A concept page gives what it is, the formula, when to use it, the pitfall, and an nnctl config
    and command that show it. A finding code page says what nnctl saw, why it matters and what to
    try. Names are forgiving: case, '-' or ' ' for '_', and aliases (kaiming = he, glorot = xavier,
    batchnorm = batch_norm, chain_rule = backprop, ...).

    \b
    Examples:
      nnctl explain                       # list the concepts and codes
      nnctl explain he --lang vi          # He initialisation, in Vietnamese
      nnctl explain DEAD_RELU
      NNCTL_LANG=vi nnctl explain backprop
      nnctl explain xavier --json | jq -r .formula
    """
    import click

    from nnctl.concepts import page, resolve

    if topic is None or list_:
        if topic is not None:
            resolve(topic)  # a typo next to --list is still an error
        kind, name = None, None
    else:
        kind, name = resolve(topic)
    if json_out:
        print_json(page.document(kind, name, lang.value), indent=2)
        return
    if kind is None:
        lines = page.listing(lang.value)
    else:
        lines = (page.concept_page if kind == "concept" else page.finding_page)(name, lang.value)
    styles = {"title": {"bold": True}, "heading": {"bold": True, "fg": "cyan"}}
    for kind, line in lines:
        typer.echo(click.style(line, **styles[kind]) if kind in styles else line)


@app.command()
@handle_errors
def gradcheck(
    config: ConfigArg,
    set_: SetOpt = None,
    rows: Annotated[int, typer.Option(min=1, max=256, metavar="N", help="Training rows in the check batch.")] = 8,
    json_out: JsonOpt = False,
    quiet: QuietOpt = 0,
):
    """Check backprop against finite differences on the model CONFIG builds (float64).

    Every parameter is nudged by ±1e-6 and the loss difference compared with the analytic
    gradient, per tensor (W1, b1, gamma1, ...). Exit code 0 if all agree to 1e-5, 1 if not.

    Examples:

    \b
      nnctl gradcheck configs/moons.yaml
      nnctl gradcheck configs/spiral.yaml --json | jq .passed
    """
    from nnctl.checks import gradcheck_spec
    from nnctl.config.load import load_spec

    result = gradcheck_spec(load_spec(config, set_ or []), rows=rows)
    if json_out:
        print_json(result)
    else:
        from nnctl.cli import render

        render.gradcheck(result)
    if not result["passed"]:
        raise typer.Exit(1)


@app.command("lr-find")
@handle_errors
def lr_find(
    config: ConfigArg,
    set_: SetOpt = None,
    start: Annotated[float, typer.Option(metavar="LR", help="First learning rate.")] = 1e-7,
    end: Annotated[float, typer.Option(metavar="LR", help="Last learning rate.")] = 10.0,
    steps: Annotated[int, typer.Option(min=10, max=10_000, metavar="N", help="Optimizer steps in the ramp.")] = 100,
    plot: plot_option("Also draw loss against learning rate into this PNG.") = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = 0,
):
    """Learning-rate range test: raise the lr exponentially each step, watch the loss, suggest a rate.

    Uses the config's model, optimizer and batch size on its training split; no run is written.
    The suggestion is a tenth of the rate with the lowest smoothed loss; if the loss never fell
    10%, a tenth of the rate where it doubles; moved down off a rising stretch; at most 0.025 for
    adam/adamw. --plot draws it on log-log axes.

    Example: nnctl lr-find configs/moons.yaml -o lr.png
    """
    from nnctl.checks import lr_find as find
    from nnctl.cli import render
    from nnctl.config.load import load_spec
    from nnctl.plot import plot_lr_find

    show(find(load_spec(config, set_ or []), start=start, end=end, steps=steps), json_out, render.lr_find, plot,
         plot_lr_find)


@app.command()
@handle_errors
def trace(
    config: ConfigArg,
    set_: SetOpt = None,
    rows: Annotated[int, typer.Option(metavar="N", help="The first N training rows, as one batch (1 to 16).")] = 2,
    steps: Annotated[int, typer.Option(metavar="K", help="Gradient steps on that batch (1 to 20).")] = 1,
    json_out: JsonOpt = False,
    quiet: QuietOpt = 0,
):
    """Print every number of K training steps on the first N training rows: each layer's Z and A,
    the loss J, each layer's dZ, dW and db (layer L down to 1), and the parameters after each update.

    The model, data, initial weights (or model.init_from), optimizer and lr are those `nnctl train`
    would use; the batch is the first N rows of the training split (data order), the same batch
    every step, in training mode (dropout masks drawn, batch-norm batch statistics). Networks with
    more than 16 inputs, units or outputs in a layer are refused: a trace is read by hand. Exit
    code 1 if a step's loss or gradient is not finite (the trace stops there, as training would).

    Example: nnctl trace configs/xor.yaml --set model.hidden=[3,3] --set train.dtype=float64 --steps 2
    """
    from nnctl.cli import render
    from nnctl.config.load import load_spec
    from nnctl.trace import json_document, trace_spec

    result = trace_spec(load_spec(config, set_ or []), rows=rows, steps=steps)  # sizes checked before loading data

    for f in result["findings"] if quiet < QUIET_FINDINGS else ():
        render.finding(f, render.stderr())
    for n in result["notes"]:
        render.note(n)
    if json_out:
        print_json(json_document(result))
    else:
        from nnctl.cli.render_trace import trace as show_trace

        show_trace(result)
    if result["diverged"]:  # the trace is printed; the training it shows failed
        raise typer.Exit(1)


def _functions(incomplete: str) -> list[str]:
    """Shell completion of gd's FUNCTION: the built-in functions."""
    from nnctl.gd import FUNCTIONS

    return [f for f in FUNCTIONS.names() if f.startswith(incomplete)]


@app.command("gd")
@handle_errors
def gd(
    function: Annotated[str, typer.Argument(metavar="FUNCTION", help="A built-in function: x^2, x^2+5sin(x), bowl, "
                                            "rosenbrock, linreg (quote it in the shell).", show_default=False,
                                            autocompletion=_functions)],
    lr: Annotated[str | None, typer.Option("--lr", metavar="LR,...", help="Learning rates, comma-separated "
                                           "(up to 8; default: the function's own, e.g. 0.01,0.1,0.35 for "
                                           "x^2+5sin(x)).", show_default=False)] = None,
    x0: Annotated[str | None, typer.Option("--x0", metavar="X", help="Start point: a number, or X,Y for two "
                                           "variables (default: the function's own).", show_default=False)] = None,
    steps: Annotated[int | None, typer.Option(metavar="K", help="At most K updates (1 to 100000; default: the "
                                              "function's own).", show_default=False)] = None,
    tol: Annotated[float, typer.Option(metavar="T", help="Converged when |grad f| falls below T.")] = 1e-6,
    gd_: Annotated[str | None, typer.Option("--gd", metavar="VARIANT,...", help="linreg only: batch (all 20 "
                                            "points per step), stochastic (one), minibatch (--batch-size); "
                                            "default: all three.", show_default=False)] = None,
    batch_size: Annotated[int, typer.Option(metavar="B", help="Rows per minibatch step (linreg).")] = 5,
    seed: Annotated[int, typer.Option(metavar="N", help="Seed of the stochastic/minibatch row order (linreg).")
                    ] = 0,
    every: Annotated[int | None, typer.Option(metavar="N", min=1, help="Print every N-th step (default: all of "
                                              "a short run, the first and last steps of a long one).",
                                              show_default=False)] = None,
    plot: plot_option("Draw the function with each rate's path (contours for two variables) and f against "
                      "the step into this PNG.") = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = 0,
):
    """Gradient descent x <- x - lr * f'(x) on a built-in function, for several learning rates side by side.

    Prints, per rate, the steps taken, the final x, f(x) and |f'(x)|, and how it stopped: converged
    (|f'(x)| < --tol), max_steps, or diverged (x or f not finite, or |x| > 10000); then the iterates
    x_k, f(x_k), f'(x_k). A rate that diverges is a result, not an error: the exit code is 0.
    Functions: x^2; x^2+5sin(x) (the course notes' first example: rates too small, right and too
    large); bowl = x^2 + 10 y^2 (zig-zag); rosenbrock (a curved valley); linreg, the mean squared
    error of y = w x + b on 20 fixed points, with batch, stochastic and minibatch descent.

    \b
    Examples:
      nnctl gd 'x^2+5sin(x)' -o gd.png              # lr 0.01, 0.1, 0.35 from x0 = 5
      nnctl gd x^2 --lr 0.5,1,1.01 --x0 3 --steps 20
      nnctl gd bowl --lr 0.09 --x0 -8,1 --every 5
      nnctl gd linreg --gd batch,stochastic -o linreg.png
      nnctl gd x^2+5sin(x) --json | python -c "import json,sys; print(json.load(sys.stdin)['runs'][1]['x'][-1])"
    """
    from nnctl.gd import gd as descend
    from nnctl.gd import json_document, parse_numbers, parse_variants

    result = descend(function, lrs=None if lr is None else parse_numbers(lr, "--lr"),
                     x0=None if x0 is None else parse_numbers(x0, "--x0"), steps=steps, tol=tol,
                     variants=None if gd_ is None else parse_variants(gd_), batch_size=batch_size, seed=seed)
    if plot is not None:
        from nnctl.cli.render import wrote
        from nnctl.plot import plot_gd

        plot_gd(result, plot)
        wrote(plot)
    if json_out:
        print_json(json_document(result))
    else:
        from nnctl.cli.render_gd import gd as show_gd

        show_gd(result, every)


# ------------------------------------------------------------------------------------ reference
@app.command()
@handle_errors
def schema(
    output: output_option("Write to this file instead of stdout.") = None,
    json_out: Annotated[bool, typer.Option("--json", help="Accepted for uniformity: the schema is one JSON "
                                                          "document anyway.")] = False,
    quiet: QuietOpt = 0,
):
    """Print the JSON Schema of the config format, for editor validation of YAML.

    Generated from the same field table that validates configs, so it never drifts.
    Example (VS Code + the YAML extension): nnctl schema -o nnctl.schema.json, then put
    `# yaml-language-server: $schema=nnctl.schema.json` on the first line of a config.
    """
    from nnctl.config.load import config_schema

    text = json.dumps(config_schema(), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        write_output(output, text)


@app.command()
@handle_errors
def datasets(
    json_out: JsonOpt = False,
    quiet: QuietOpt = 0,
):
    """List the built-in datasets (data.source: sklearn:NAME) with their options and shapes.

    Nothing is downloaded: scikit-learn's toy data ships with it, and xor, spiral and sine are
    generated by nnctl. Options go in data.options; random_state defaults to 0 so the data is fixed.

    Examples:

    \b
      nnctl datasets
      nnctl datasets --json | jq '.moons.options'
      nnctl train configs/moons.yaml --set data.source=sklearn:circles
    """
    from nnctl.data.builtins import BUILTINS

    if json_out:
        print_json({name: {"task": b.task, "summary": b.summary, "shape": b.shape, "options": b.options,
                           "option_help": b.option_help} for name, b in BUILTINS.items()}, indent=2)
        return
    from nnctl.cli import render

    render.datasets(BUILTINS)




@app.command("init")
@handle_errors
def init(
    data_file: Annotated[Path, typer.Argument(metavar="DATA_FILE", help="A data file: .csv .tsv .txt (optionally "
                                              ".gz .bz2 .xz .zip) or .parquet.", show_default=False)],
    target: Annotated[str | None, typer.Option(metavar="COL", help="The column to predict: a name or an index "
                                                                   "(default: the last column).")] = None,
    output: output_option("Write the config here (default: stdout); data.source is written relative to it.",
                          "CONFIG.yaml") = None,
    delimiter: Annotated[str, typer.Option(metavar="D", help="auto, or one character (' ' for runs of spaces, "
                                                             "tab for a tab).")] = "auto",
    decimal: Annotated[Decimal, typer.Option(help="The decimal mark of the numbers.")] = Decimal.point,
    no_header: Annotated[bool, typer.Option("--no-header", help="The file has no header row (columns c0, c1, "
                                                                  "...).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the -o file if it exists.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print {\"config\": the config as data, \"yaml\": "
                                           "its text with the comments, \"written_to\": the -o file or null}.")
                        ] = False,
    quiet: QuietOpt = 0,
):
    """Write a starting config for a data file: the target and task, every column's role
    (numeric, categorical, date, id, ignored) and how missing values are handled, each with the
    reason in a comment.

    Examples:

    \b
      nnctl init penguins.csv --target species -o penguins.yaml && nnctl train penguins.yaml
      nnctl init sales.csv --delimiter ';' --decimal ,
    """
    from nnctl.data.reading import require_regular_file
    from nnctl.errors import ConfigError
    from nnctl.init_config import init_config

    require_regular_file(data_file)
    if delimiter != "auto" and len(delimiter) != 1 and delimiter != "tab":
        raise ConfigError(f"--delimiter must be auto or one character; got {delimiter!r}")
    if output is not None and output.exists() and not force:
        raise ConfigError(f"--output {output}: exists; pass --force to overwrite it")
    text = init_config(data_file, target, "\t" if delimiter == "tab" else delimiter, decimal.value, not no_header,
                       output)
    from nnctl.cli import render
    from nnctl.init_config import train_check

    problem = train_check(text, data_file)  # the config is written all the same: the user edits it
    if problem is not None:
        head, _, rest = text.partition("\nname: ")  # above the config's first key (the header names files)
        text = (head + "\n# As written, `nnctl train` stops here:\n"
                + "".join(f"#   {line}\n" for line in problem.splitlines()) + "name: " + rest)
    to_file = output is not None and str(output) != "-"
    if to_file:
        write_output(output, text)
        render.info(f"wrote {output}; next: nnctl train {output}")
    if problem is not None:
        render.warning(f"as written, nnctl train stops: {problem}")
    if json_out:
        from nnctl.config.yamlio import load_yaml

        print_json({"config": load_yaml(text, "the config")[0], "yaml": text, "train_problem": problem,
                    "written_to": str(output) if to_file else None}, indent=2)
    elif not to_file:
        sys.stdout.write(text)
