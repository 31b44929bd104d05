#include "util/output_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace plumb {

namespace {

// ---- The temporary files a signal must remove ----------------------------------------------
// A fixed table, so the handler needs no allocation and no lock: a slot is claimed (1), its
// path written, then published (2); the handler unlinks the published ones.
constexpr int kSlots = 64;
struct TempSlot {
  std::atomic<int> state{0};  // 0 free, 1 being filled, 2 published
  char path[PATH_MAX];
};
TempSlot g_slots[kSlots];

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};
struct sigaction g_previous[sizeof(kSignals) / sizeof(kSignals[0])];

void on_fatal_signal(int sig) {
  for (TempSlot& s : g_slots) {
    if (s.state.load(std::memory_order_acquire) == 2) unlink(s.path);
  }
  // Back to what was there (the default: terminate), then the same signal again: the
  // process ends as the signal says (exit status 128 + sig in a shell).
  for (size_t i = 0; i < sizeof(kSignals) / sizeof(kSignals[0]); ++i) {
    if (kSignals[i] == sig) sigaction(sig, &g_previous[i], nullptr);
  }
  raise(sig);
}

void install_handlers_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (size_t i = 0; i < sizeof(kSignals) / sizeof(kSignals[0]); ++i) {
      struct sigaction action {};
      action.sa_handler = on_fatal_signal;
      sigemptyset(&action.sa_mask);
      action.sa_flags = 0;
      struct sigaction previous {};
      sigaction(kSignals[i], nullptr, &previous);
      g_previous[i] = previous;
      // A signal the program ignores (nohup) stays ignored; one with its own handler (chat's
      // Ctrl-C) keeps it.
      if (previous.sa_handler != SIG_DFL) continue;
      sigaction(kSignals[i], &action, nullptr);
    }
  });
}

int register_temp(const std::string& path) {
  if (path.size() >= PATH_MAX) return -1;
  install_handlers_once();
  for (int i = 0; i < kSlots; ++i) {
    int expected = 0;
    if (g_slots[i].state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
      std::memcpy(g_slots[i].path, path.c_str(), path.size() + 1);
      g_slots[i].state.store(2, std::memory_order_release);
      return i;
    }
  }
  return -1;  // more than kSlots outputs at once: still removed on failure, not on a signal
}

void unregister_temp(int slot) {
  if (slot >= 0) g_slots[slot].state.store(0, std::memory_order_release);
}

std::string directory_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_name(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// `path` after symbolic links, when it is one; else `path` itself.
std::string link_target(const std::string& path) {
  struct stat ls {};
  if (lstat(path.c_str(), &ls) != 0 || !S_ISLNK(ls.st_mode)) return path;
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved) == nullptr) return path;
  return resolved;
}

}  // namespace

Status check_output_path(const std::string& output, const std::vector<std::string>& inputs) {
  if (output.empty()) return Status::error("the output file name is empty");
  struct stat ls {};
  struct stat os {};
  const bool exists = lstat(output.c_str(), &ls) == 0;
  const bool resolves = stat(output.c_str(), &os) == 0;
  if (exists && S_ISLNK(ls.st_mode) && !resolves) {
    return Status::errorf("output %s is a symbolic link to a file that does not exist; name the file itself",
                          output.c_str());
  }
  if (resolves && S_ISDIR(os.st_mode)) {
    return Status::errorf("output %s is a directory; name a file to write", output.c_str());
  }
  if (!resolves) {
    const std::string dir = directory_of(output);
    struct stat ds {};
    if (stat(dir.c_str(), &ds) != 0 || !S_ISDIR(ds.st_mode)) {
      return Status::errorf("output %s: directory %s does not exist", output.c_str(), dir.c_str());
    }
  }
  for (const std::string& input : inputs) {
    struct stat is {};
    if (!resolves || input.empty() || stat(input.c_str(), &is) != 0) continue;
    if (is.st_dev == os.st_dev && is.st_ino == os.st_ino) {
      return Status::errorf("output %s is the same file as the input %s%s; refusing to overwrite an input "
                            "(name another output file)",
                            output.c_str(), input.c_str(), output == input ? "" : " (through a link)");
    }
  }
  if (resolves && !S_ISREG(os.st_mode)) return Status();  // a device or a pipe: written in place
  const std::string dir = directory_of(link_target(output));
  if (access(dir.c_str(), W_OK | X_OK) != 0) {
    return Status::errorf("output %s: cannot create files in directory %s: %s", output.c_str(), dir.c_str(),
                          std::strerror(errno));
  }
  return Status();
}

Result<std::unique_ptr<OutputFile>> OutputFile::create(const std::string& path) {
  std::unique_ptr<OutputFile> f(new OutputFile());
  f->path_ = path;
  f->target_ = link_target(path);
  // A device or a pipe (-o /dev/null, a FIFO) is written in place: renaming a file over it
  // would replace the device with a plain file.
  struct stat existing {};
  if (stat(f->target_.c_str(), &existing) == 0 && !S_ISREG(existing.st_mode) && !S_ISDIR(existing.st_mode)) {
    f->stream_ = std::fopen(f->target_.c_str(), "wb");
    if (f->stream_ == nullptr) return Status::errorf("%s: cannot open: %s", path.c_str(), std::strerror(errno));
    return f;
  }
  std::string pattern = directory_of(f->target_) + "/" + base_name(f->target_) + ".XXXXXX.tmp";
  const int fd = mkstemps(pattern.data(), 4);
  if (fd < 0) {
    return Status::errorf("%s: cannot create a temporary file in %s: %s", path.c_str(),
                          directory_of(f->target_).c_str(), std::strerror(errno));
  }
  f->temp_path_ = pattern;
  f->slot_ = register_temp(f->temp_path_);
  // mkstemps makes the file 0600; the output gets the old file's mode, else the usual one.
  struct stat st {};
  mode_t mode = 0;
  if (stat(f->target_.c_str(), &st) == 0) {
    mode = st.st_mode & 07777;
  } else {
    const mode_t mask = umask(0);
    umask(mask);
    mode = 0666 & ~mask;
  }
  fchmod(fd, mode);
  f->stream_ = fdopen(fd, "wb");
  if (f->stream_ == nullptr) {
    const int err = errno;
    close(fd);
    f->discard();
    return Status::errorf("%s: cannot open a temporary file: %s", path.c_str(), std::strerror(err));
  }
  return f;
}

OutputFile::~OutputFile() { discard(); }

void OutputFile::discard() {
  if (stream_ != nullptr) {
    std::fclose(stream_);
    stream_ = nullptr;
  }
  if (!temp_path_.empty()) {
    unlink(temp_path_.c_str());
    temp_path_.clear();
  }
  unregister_temp(slot_);
  slot_ = -1;
}

Status OutputFile::write(const void* data, size_t n) {
  if (stream_ == nullptr) return Status::errorf("%s: already closed", path_.c_str());
  if (n > 0 && std::fwrite(data, 1, n, stream_) != n) {
    return Status::errorf("%s: write failed: %s", path_.c_str(), std::strerror(errno));
  }
  return Status();
}

Status OutputFile::flush() {
  if (stream_ == nullptr || std::fflush(stream_) != 0) {
    return Status::errorf("%s: write failed: %s", path_.c_str(), std::strerror(errno));
  }
  return Status();
}

Status OutputFile::commit() {
  if (stream_ == nullptr) return Status::errorf("%s: already closed", path_.c_str());
  Status s;
  if (std::fflush(stream_) != 0) s = Status::errorf("%s: write failed: %s", path_.c_str(), std::strerror(errno));
  if (s.ok() && !temp_path_.empty() && fsync(fileno(stream_)) != 0) {
    s = Status::errorf("%s: fsync failed: %s", path_.c_str(), std::strerror(errno));
  }
  const int closed = std::fclose(stream_);
  stream_ = nullptr;
  if (closed != 0 && s.ok()) s = Status::errorf("%s: close failed: %s", path_.c_str(), std::strerror(errno));
  if (s.ok() && !temp_path_.empty() && std::rename(temp_path_.c_str(), target_.c_str()) != 0) {
    s = Status::errorf("%s: cannot rename %s into place: %s", path_.c_str(), temp_path_.c_str(),
                       std::strerror(errno));
  }
  if (s.ok()) temp_path_.clear();  // it is the output now
  discard();
  return s;
}

Status write_file_atomically(const std::string& path, const void* bytes, size_t n) {
  PLUMB_ASSIGN_OR_RETURN(std::unique_ptr<OutputFile> out, OutputFile::create(path));
  PLUMB_RETURN_IF_ERROR(out->write(bytes, n));
  return out->commit();
}

}  // namespace plumb
