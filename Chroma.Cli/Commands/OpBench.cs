using System.Diagnostics;
using System.Text.Json;
using Chroma.Kernels.Harness;
using Spectre.Console;

namespace Chroma.Cli.Commands;

/// <summary>
/// `chroma bench --op NAME`: the op harness's time mode (<see cref="OpHarness.Time"/>) on every benchmark case
/// of one declared op (<see cref="Ops"/>, shapes from the embedded op_shapes.json), forward and forward+backward,
/// median and best of --repeats. With --peer, the PyTorch peer (peer/ops_torch.py beside the tool) times the
/// same list (handed the embedded file, so both sides read one list): Chroma and PyTorch alternate for --rounds
/// rounds, the samples of all rounds are pooled, and the table puts PyTorch's median beside Chroma's with the
/// ratio Chroma / PyTorch (above 1: Chroma is slower). `--op list` lists the declared ops. With --json one object:
/// <code>
/// {"device": ..., "device_selection": ..., "processor": ..., "cores": 2, "op": "conv2d", "repeats": 5, "rounds": 2,
///  "peer": "torch 1.13 on cpu, 2 threads" (or null), "entries": [{"name": "w0.25.low1", "sizes": {"N": 4, ...},
///  "forward_median_ms", "forward_best_ms", "train_median_ms", "train_best_ms", "forward_gflops",
///  "torch_forward_median_ms", "torch_forward_best_ms", "torch_train_median_ms", "torch_train_best_ms",
///  "forward_ratio", "train_ratio"}]}
/// </code>
/// ("train" is forward+backward, absent for a forward-only op such as adadelta; gflops from the best forward, 2 flops per
/// multiply-add; torch_* and ratios only with --peer.)
/// </summary>
static class OpBench
{
    sealed class Row(OpCase c)
    {
        public OpCase Case { get; } = c;
        public OpTiming? Forward, Train, TorchForward, TorchTrain;
    }

    public static int Run(Device dev, string opName, string[] caseNames, int repeats, int rounds, bool peer, string? python, bool asJson)
    {
        if (opName == "list") return List(asJson);
        var op = Ops.Find(opName) ?? throw new CliException($"--op: unknown op '{opName}'; known ops: {Ops.Names} (or list)");
        var cases = Select(op, caseNames);
        rounds = Math.Max(1, rounds);
        string processor = BenchCommand.ProcessorName();
        string? script = null, shapes = null, peerName = null;
        python ??= File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
        if (peer)
        {
            if (dev is not CpuDevice) throw new CliException("--peer: the PyTorch peer times the CPU; use --device cpu");
            script = Path.Combine(AppContext.BaseDirectory, "peer", "ops_torch.py");
            if (!File.Exists(script)) throw new CliException($"--peer: {script} is missing from the tool's folder.");
            shapes = Path.Combine(Path.GetTempPath(), $"chroma-op-shapes-{Environment.ProcessId}.json");
            File.WriteAllText(shapes, OpShapeList.Default.Text);
        }
        if (!asJson)
        {
            // Redirected, Spectre wraps at 80 columns, too narrow for this table.
            if (Console.IsOutputRedirected && CliConsole.Out.Profile.Width < 200) CliConsole.Out.Profile.Width = 200;
            CliConsole.Out.MarkupLineInterpolated($"device: {dev.Name} ({dev.SelectionReason})");
            CliConsole.Out.MarkupLineInterpolated($"processor: {processor}, {Environment.ProcessorCount} cores");
            CliConsole.Out.MarkupLineInterpolated($"op: {op.Summary}");
        }
        var rows = cases.Select(c => new Row(c)).ToList();
        try
        {
            for (int round = 1; round <= rounds; round++)
            {
                CliConsole.Error.MarkupLineInterpolated($"round {round}/{rounds}: Chroma, {rows.Count} cases");
                foreach (var row in rows)
                {
                    using var run = op.Prepare(dev, row.Case);
                    row.Forward = Pool(row.Forward, OpHarness.Time(run, repeats, backward: false));
                    if (run.HasBackward) row.Train = Pool(row.Train, OpHarness.Time(run, repeats, backward: true));
                }
                if (!peer) continue;
                CliConsole.Error.MarkupLineInterpolated($"round {round}/{rounds}: PyTorch, {rows.Count} cases");
                using var result = RunPeer(python, script!, shapes!, op.Name, rows.Select(r => r.Case.Name), repeats);
                peerName = result.RootElement.GetProperty("device").GetString();
                foreach (var e in result.RootElement.GetProperty("entries").EnumerateArray())
                {
                    var row = rows.Single(r => r.Case.Name == e.GetProperty("name").GetString());
                    row.TorchForward = Pool(row.TorchForward, Samples(e, "forward_ms"));
                    if (e.TryGetProperty("train_ms", out _)) row.TorchTrain = Pool(row.TorchTrain, Samples(e, "train_ms"));
                }
            }
        }
        finally
        {
            if (shapes is not null) File.Delete(shapes);
        }
        if (asJson) Console.Out.WriteLine(Json(dev, processor, op, repeats, rounds, peerName, rows));
        else
        {
            if (peerName is not null) CliConsole.Out.MarkupLineInterpolated($"peer: {peerName}; ratio = Chroma median / PyTorch median");
            CliConsole.Out.Write(Table(op, rows, peer));
        }
        return CliConventions.Done;
    }

    /// <summary>The op's benchmark cases; --case NAME keeps a case by name or by prefix ("w0.25" keeps w0.25.*).</summary>
    static List<OpCase> Select(OpDeclaration op, string[] names)
    {
        var all = op.BenchCases;
        if (all.Count == 0) throw new CliException($"--op {op.Name}: op_shapes.json lists no benchmark cases for it.");
        if (names.Length == 0) return all.ToList();
        var unknown = names.Where(n => !all.Any(c => Matches(c, n))).ToList();
        if (unknown.Count > 0)
            throw new CliException($"--case: {op.Name} has no case '{unknown[0]}'; cases: {string.Join(", ", all.Select(c => c.Name))}");
        return all.Where(c => names.Any(n => Matches(c, n))).ToList();
    }

    static bool Matches(OpCase c, string name) => c.Name == name || c.Name.StartsWith(name + ".", StringComparison.Ordinal);

    static OpTiming Pool(OpTiming? earlier, OpTiming now) => earlier is null ? now : earlier.Merge(now);

    static OpTiming Samples(JsonElement entry, string key) =>
        new(entry.GetProperty(key).EnumerateArray().Select(v => v.GetDouble() / 1e3).ToArray());

    /// <summary>Runs ops_torch.py on the named cases; its JSON object, or a CliException (exit 1) with what it printed on stderr.</summary>
    static JsonDocument RunPeer(string python, string script, string shapes, string op, IEnumerable<string> cases, int repeats)
    {
        var start = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { script, "--op", op, "--shapes", shapes, "--cases", string.Join(",", cases),
                     "--repeats", $"{repeats}", "--threads", $"{Environment.ProcessorCount}", "--json" })
            start.ArgumentList.Add(a);
        Process process;
        try { process = Process.Start(start) ?? throw new CliException($"--peer: could not start {python}", CliConventions.SomeFailed); }
        catch (System.ComponentModel.Win32Exception e) { throw new CliException($"--peer: could not start {python}: {e.Message}", CliConventions.SomeFailed); }
        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync();
            string stdout = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
                throw new CliException($"--peer: {python} {Path.GetFileName(script)} failed (exit {process.ExitCode}): {Tail(stderr.Result)}", CliConventions.SomeFailed);
            try { return JsonDocument.Parse(stdout); }
            catch (JsonException e) { throw new CliException($"--peer: {Path.GetFileName(script)} printed no JSON object ({e.Message}): {Tail(stdout)}", CliConventions.SomeFailed); }
        }
    }

    static string Tail(string text)
    {
        var lines = text.Trim().Split('\n');
        return string.Join(" | ", lines.Skip(Math.Max(0, lines.Length - 3))).Trim();
    }

    static int List(bool asJson)
    {
        if (asJson)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(new
            {
                ops = Ops.All.Select(o => new { name = o.Name, summary = o.Summary, check_cases = o.CheckCases.Count, bench_cases = o.BenchCases.Count }),
            }));
            return CliConventions.Done;
        }
        var table = new Table().AddColumns("op", "check cases", "bench cases", "what");
        foreach (var o in Ops.All) table.AddRow(o.Name, $"{o.CheckCases.Count}", $"{o.BenchCases.Count}", Markup.Escape(o.Summary));
        CliConsole.Out.Write(table);
        return CliConventions.Done;
    }

    static Table Table(OpDeclaration op, List<Row> rows, bool peer)
    {
        var table = new Table().AddColumns("case", "shape", "forward median", "best", "GFLOP/s");
        if (peer) table.AddColumns("PyTorch", "ratio");
        table.AddColumns("fwd+bwd median", "best");
        if (peer) table.AddColumns("PyTorch", "ratio");
        foreach (var r in rows)
        {
            double macs = op.ForwardMultiplyAdds(r.Case);
            var cells = new List<string> { Markup.Escape(r.Case.Name), Markup.Escape(op.Describe(r.Case)), BenchCommand.Ms(r.Forward!.Median), BenchCommand.Ms(r.Forward.Best),
                macs > 0 ? $"{2 * macs / r.Forward.Best / 1e9:F1}" : "" };
            if (peer) cells.AddRange([BenchCommand.Ms(r.TorchForward!.Median), $"{r.Forward.Median / r.TorchForward.Median:F3}"]);
            // a forward-only op has no forward+backward
            cells.AddRange(r.Train is { } train ? [BenchCommand.Ms(train.Median), BenchCommand.Ms(train.Best)] : ["-", "-"]);
            if (peer) cells.AddRange(r.Train is { } t && r.TorchTrain is { } tt ? [BenchCommand.Ms(tt.Median), $"{t.Median / tt.Median:F3}"] : ["-", "-"]);
            table.AddRow(cells.ToArray());
        }
        return table;
    }

    static string Json(Device dev, string processor, OpDeclaration op, int repeats, int rounds, string? peer, List<Row> rows)
    {
        using var buffer = new MemoryStream();
        using (var j = new Utf8JsonWriter(buffer))
        {
            j.WriteStartObject();
            BenchCommand.WriteMachine(j, dev, processor);
            j.WriteString("op", op.Name);
            j.WriteNumber("repeats", repeats);
            j.WriteNumber("rounds", rounds);
            if (peer is null) j.WriteNull("peer"); else j.WriteString("peer", peer);
            j.WriteStartArray("entries");
            foreach (var r in rows)
            {
                j.WriteStartObject();
                j.WriteString("name", r.Case.Name);
                j.WriteStartObject("sizes");
                foreach (var (k, v) in r.Case.Sizes) j.WriteNumber(k, v);
                j.WriteEndObject();
                static void Ms(Utf8JsonWriter j, string key, double seconds) => j.WriteNumber(key, Math.Round(seconds * 1e3, 4));
                Ms(j, "forward_median_ms", r.Forward!.Median);
                Ms(j, "forward_best_ms", r.Forward.Best);
                if (r.Train is { } train)
                {
                    Ms(j, "train_median_ms", train.Median);
                    Ms(j, "train_best_ms", train.Best);
                }
                if (op.ForwardMultiplyAdds(r.Case) is double macs and > 0) j.WriteNumber("forward_gflops", Math.Round(2 * macs / r.Forward.Best / 1e9, 3));
                if (r.TorchForward is { } tf)
                {
                    Ms(j, "torch_forward_median_ms", tf.Median);
                    Ms(j, "torch_forward_best_ms", tf.Best);
                    j.WriteNumber("forward_ratio", Math.Round(r.Forward.Median / tf.Median, 4));
                }
                if (r.Train is { } t && r.TorchTrain is { } tt)
                {
                    Ms(j, "torch_train_median_ms", tt.Median);
                    Ms(j, "torch_train_best_ms", tt.Best);
                    j.WriteNumber("train_ratio", Math.Round(t.Median / tt.Median, 4));
                }
                j.WriteEndObject();
            }
            j.WriteEndArray();
            j.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }
}
