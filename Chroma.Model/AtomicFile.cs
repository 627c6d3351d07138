namespace Chroma.Model;

/// <summary>
/// Writes a file so that its final name only ever holds a complete file: the content goes to a
/// hidden temporary file in the same folder (same file system, so the rename is atomic), which is
/// flushed and then renamed over the target. On failure the temporary file is removed.
/// </summary>
internal static class AtomicFile
{
    public static void Write(string path, bool overwrite, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full) ?? throw new IOException($"{full}: not a file path.");
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Cannot write {full}: folder {folder} does not exist.");
        if (!overwrite && File.Exists(full)) throw Exists(full);

        string temp = Path.Combine(folder, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            try
            {
                File.Move(temp, full, overwrite);
            }
            catch (IOException) when (!overwrite && File.Exists(full))
            {
                throw Exists(full); // created by someone else between the check and the rename
            }
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    static IOException Exists(string full) => new($"{full} already exists; not overwriting it.");
}
