#!/usr/bin/env bash
# Checks the NuGet packages end to end, as a user gets them:
#   1. `dotnet pack -c Release -o artifacts` (the libraries, the `chroma` tool's pointer package and
#      its RID packages);
#   2. installs the tool from artifacts/ into a temporary folder and colorizes the README's example
#      photo with it (the default model must travel inside);
#   3. makes a new console app that references Chroma.Model from artifacts/ (its dependencies from
#      nuget.org), colorizes the photo with Colorizer.LoadDefault() through the file API and the span
#      API, and checks both results;
#   4. prints the packages' sizes.
# Run from anywhere in a clone: scripts/test-packages.sh. Needs the .NET 10 SDK and nuget.org.
# Exits non-zero, with a message, on the first failure; temporary folders are removed either way.
#
# Restores after the pack use a private NuGet packages folder ($tmp/packages) and a nuget.config
# that takes Chroma.* from artifacts/ only: packages of an earlier pack with the same version, in the
# user's global packages folder, or a package of the same name on nuget.org, can never stand in
# for the ones just made.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

fail() { echo "test-packages: FAILED: $*" >&2; exit 1; }
step() { echo; echo "== $*"; }

command -v dotnet > /dev/null || fail "dotnet not found (the .NET 10 SDK is needed)"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

photo="$root/examples/colorado-national-park-1941.png"
[[ -f "$photo" ]] || fail "$photo is missing"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/chroma-packages.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# ---------------------------------------------------------------- 1. pack
step "dotnet pack -c Release -o artifacts"
rm -f artifacts/Chroma.*.nupkg   # only this pack's packages are tested and measured
dotnet pack -c Release -o artifacts || fail "dotnet pack failed"

version="$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props | head -n 1)"
[[ -n "$version" ]] || fail "no <Version> in Directory.Build.props"
for id in Chroma.Tensor Chroma.Kernels Chroma.Model Chroma.Training Chroma.Cli \
          Chroma.Cli.linux-x64 Chroma.Cli.linux-arm64 Chroma.Cli.win-x64 Chroma.Cli.osx-arm64; do
  [[ -f "artifacts/$id.$version.nupkg" ]] || fail "artifacts/$id.$version.nupkg was not made"
done
for id in Chroma.Benchmarks Chroma.Tests; do
  [[ ! -e "artifacts/$id.$version.nupkg" ]] || fail "artifacts/$id.$version.nupkg was made; $id is not packable"
done

# Restores from here on: a private packages folder, Chroma.* from artifacts/ only.
export NUGET_PACKAGES="$tmp/packages"
cat > "$tmp/nuget.config" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="artifacts" value="$root/artifacts" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" protocolVersion="3" />
  </packageSources>
  <packageSourceMapping>
    <packageSource key="artifacts">
      <package pattern="Chroma.*" />
    </packageSource>
    <packageSource key="nuget.org">
      <package pattern="*" />
    </packageSource>
  </packageSourceMapping>
</configuration>
EOF

# ---------------------------------------------------------------- 2. the tool
step "dotnet tool install Chroma.Cli $version from artifacts/"
dotnet tool install --tool-path "$tmp/tool" --configfile "$tmp/nuget.config" --version "$version" Chroma.Cli \
  || fail "dotnet tool install Chroma.Cli failed"
[[ -x "$tmp/tool/chroma" ]] || fail "the tool installed no 'chroma' command in $tmp/tool"

step "chroma colorize $(basename "$photo")"
"$tmp/tool/chroma" colorize "$photo" -o "$tmp/out.png" || fail "chroma colorize exited with $?"
[[ -s "$tmp/out.png" ]] || fail "chroma colorize wrote no $tmp/out.png"
[[ "$(head -c 8 "$tmp/out.png" | od -An -tx1 | tr -d ' \n')" == "89504e470d0a1a0a" ]] \
  || fail "$tmp/out.png is not a PNG file"
echo "tool output: $(wc -c < "$tmp/out.png") bytes, PNG"

# ---------------------------------------------------------------- 3. a library user
step "new console app with Chroma.Model $version"
mkdir "$tmp/app"
cp "$tmp/nuget.config" "$tmp/app/nuget.config"
(
  cd "$tmp/app"
  dotnet new console --framework net10.0 --name ColorizeApp --output . --no-restore > /dev/null
  dotnet add package Chroma.Model --version "$version"
) || fail "could not make the console app or add Chroma.Model to it"

cat > "$tmp/app/Program.cs" <<'EOF'
// Colorizes a photo with the default model built into Chroma.Model, through the file API and the
// span API, and checks that both give the same, coloured, image.
using Chroma.Model;

string input = args[0], outDir = args[1];
using var colorizer = Colorizer.LoadDefault();
Console.WriteLine($"model {colorizer.Metadata["name"]} ({colorizer.Network.Config.Width} width), device {colorizer.Network.Device}, saturation {colorizer.Saturation}");

// File API: decode, colorize, encode.
var image = ImageFile.Load(input);
var viaFile = colorizer.Colorize(image);
viaFile.Save(Path.Combine(outDir, "file.png"));

// Span API: interleaved 8-bit RGB in, interleaved bytes out (no SkiaSharp type involved).
int w = image.Width, h = image.Height, plane = w * h;
var rgb24 = new byte[3 * plane];
for (int i = 0; i < plane; i++)
    for (int c = 0; c < 3; c++)
        rgb24[3 * i + c] = (byte)MathF.Round(image.Rgb[c * plane + i] * 255f);
var viaSpan = colorizer.Colorize(rgb24, w, h, PixelLayout.Rgb24);
byte[] spanPixels = viaSpan.ToPixels(PixelLayout.Rgb24);
File.WriteAllBytes(Path.Combine(outDir, "span.rgb"), spanPixels);

if (!spanPixels.AsSpan().SequenceEqual(viaFile.ToPixels(PixelLayout.Rgb24)))
    throw new Exception("the span API and the file API gave different images");
int coloured = 0;
for (int i = 0; i < plane; i++)
{
    int r = spanPixels[3 * i], g = spanPixels[3 * i + 1], b = spanPixels[3 * i + 2];
    if (Math.Max(r, Math.Max(g, b)) - Math.Min(r, Math.Min(g, b)) >= 8) coloured++;
}
Console.WriteLine($"{w}x{h}: {coloured} of {plane} pixels coloured ({100.0 * coloured / plane:F1} %); file and span results identical");
if (coloured < plane / 10) throw new Exception($"only {coloured} of {plane} pixels have colour");
EOF

step "run the console app"
(cd "$tmp/app" && dotnet run -c Release -- "$photo" "$tmp") || fail "the console app failed"
[[ "$(head -c 8 "$tmp/file.png" | od -An -tx1 | tr -d ' \n')" == "89504e470d0a1a0a" ]] \
  || fail "the console app wrote no PNG at $tmp/file.png"
[[ -s "$tmp/span.rgb" ]] || fail "the console app wrote no $tmp/span.rgb"

# ---------------------------------------------------------------- 4. sizes
step "packages"
ls -l artifacts/*.nupkg
echo
echo "test-packages: OK (Chroma $version: tool installed and run, library used from a new app)"
