// Every file plumb writes goes through here, so that no command destroys a file it did not
// mean to write:
//   - check_output_path() refuses, before any work, an output that is the same file as one of
//     the command's inputs (same device and inode: through symbolic and hard links too), a
//     directory, or a symbolic link that points nowhere;
//   - OutputFile writes to a temporary file in the output's directory and renames it into
//     place only by commit(): a failed or interrupted run leaves the old file as it was;
//   - the temporary file is removed when the OutputFile is dropped without commit(), and on
//     SIGINT/SIGTERM/SIGHUP by a signal handler (unlink(2) only, then the signal is raised
//     again with its default action, so the exit status still says what killed the program).
// A symbolic link as the output is followed: the file it points to is replaced, the link kept.
// A device or a pipe that exists (/dev/null, a FIFO) is written in place, never replaced.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "util/status.h"

namespace plumb {

// The refusals described above; ok when `output` may be written. `inputs` may contain empty
// strings (options not given) and paths that do not exist; both are skipped.
Status check_output_path(const std::string& output, const std::vector<std::string>& inputs);

class OutputFile {
 public:
  // Creates "<dir>/.<name>.XXXXXX.tmp" next to the file `path` names (after symbolic links).
  static Result<std::unique_ptr<OutputFile>> create(const std::string& path);
  ~OutputFile();  // removes the temporary file unless committed
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  FILE* stream() { return stream_; }
  const std::string& path() const { return path_; }            // as the user named it
  const std::string& temp_path() const { return temp_path_; }
  // fwrite of n bytes; an error names the output and says why (disk full, ...).
  Status write(const void* data, size_t n);
  // Pushes what was written to the temporary file (for a program that reads it by name).
  Status flush();
  // Flushes, syncs, closes and renames the temporary file onto the output. On failure the
  // temporary file is removed and the old output is left as it was.
  Status commit();

 private:
  OutputFile() = default;
  void discard();

  std::string path_;
  std::string target_;     // path_ after symbolic links: what the rename replaces
  std::string temp_path_;
  FILE* stream_ = nullptr;
  int slot_ = -1;          // in the signal handler's table of temporary files
};

// Writes `bytes` to `path` through an OutputFile (temporary file, then rename).
Status write_file_atomically(const std::string& path, const void* bytes, size_t n);

}  // namespace plumb
