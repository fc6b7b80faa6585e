package cri

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	gwebsocket "github.com/gorilla/websocket"
	clientportforward "k8s.io/client-go/tools/portforward"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// The streaming server answers the URLs that Exec, Attach and PortForward
// return. It is built from the pieces of k8s.io/cri-streaming (the SPDY
// and legacy websocket protocol handlers: remotecommand.ServeExec,
// ServeAttach, portforward.ServePortForward) rather than its ready-made
// streaming.Server, because that server cannot serve what today's clients
// ask for over websocket:
//
//   - client-go's websocket executor (crictl --transport websocket, kubectl
//     1.30+) asks only for the "v5.channel.k8s.io" subprotocol, which the
//     library's websocket handler does not list; x/net/websocket then
//     refuses the handshake with 403 Forbidden. That is the 403 containerd's
//     CRI (same library) gives crictl. v5 is v4 plus a CLOSE frame that
//     half-closes stdin; wsstream implements it, so serveWebsocketCommand
//     offers v5 next to v4 and the older protocols.
//   - client-go's websocket port-forward tunnels SPDY through websocket
//     ("SPDY/3.1+portforward.k8s.io"), which the library does not know at
//     all; serveTunneledPortForward upgrades the websocket and hands the
//     library's SPDY handler a connection that speaks through it.
//
// Owning the server also lets it end sessions whose client went away
// (trackedConn cancels the session's context when the connection's read
// side fails, which the library's handlers do not report), and close
// every hijacked connection on Stop, which http.Server.Close does not do.

// streamCreationTimeout bounds how long a SPDY client may take to open the
// streams it announced.
const streamCreationTimeout = remotecommand.DefaultStreamCreationTimeout

// Single-use tokens name cached requests in URLs, as in the kubelet.
const (
	streamTokenTTL       = time.Minute
	maxStreamsInFlight   = 1000
	streamTokenRandBytes = 12
)

// streamRuntime is what the streaming server runs sessions with.
type streamRuntime interface {
	exec(ctx context.Context, containerID string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error
	attach(ctx context.Context, containerID string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error
	portForward(ctx context.Context, podSandboxID string, port int32, stream io.ReadWriteCloser) error
}

// streamServer serves exec, attach and port-forward sessions over HTTP(S).
type streamServer struct {
	runtime     streamRuntime
	idleTimeout time.Duration
	listener    net.Listener
	http        *http.Server
	baseURL     url.URL
	tokens      *streamTokens

	mu       sync.Mutex
	conns    map[*trackedConn]struct{}
	stopping bool
	sessions sync.WaitGroup
	served   chan struct{}
}

// newStreamServer listens on cfg's stream address; serve must follow.
func newStreamServer(cfg Config, rt streamRuntime) (*streamServer, error) {
	var tlsConfig *tls.Config
	if cfg.Stream.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.Stream.TLSCertFile, cfg.Stream.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("stream TLS key pair %s, %s: %w", cfg.Stream.TLSCertFile, cfg.Stream.TLSKeyFile, err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	l, err := net.Listen("tcp", cfg.StreamAddress)
	if err != nil {
		return nil, fmt.Errorf("streaming server: listen on %s: %w", cfg.StreamAddress, err)
	}
	s := &streamServer{
		runtime:     rt,
		idleTimeout: cfg.Stream.IdleTimeout,
		listener:    l,
		baseURL:     url.URL{Scheme: "http", Host: l.Addr().String()},
		tokens:      newStreamTokens(),
		conns:       map[*trackedConn]struct{}{},
		served:      make(chan struct{}),
	}
	if tlsConfig != nil {
		s.baseURL.Scheme = "https"
		s.listener = tls.NewListener(l, tlsConfig)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/exec/{token}", s.serveExec)
	mux.HandleFunc("/attach/{token}", s.serveAttach)
	mux.HandleFunc("/portforward/{token}", s.servePortForward)
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
	return s, nil
}

// serve answers requests until stop.
func (s *streamServer) serve() {
	defer close(s.served)
	if err := s.http.Serve(s.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.L.WithError(err).Error("streaming server stopped")
	}
}

// stop closes the listener and every open session, and waits for the
// sessions to end (an exec's process is killed when its session ends).
func (s *streamServer) stop() {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	_ = s.http.Close()
	<-s.served
	s.mu.Lock()
	conns := make([]*trackedConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	s.sessions.Wait()
}

// url is where a client redeems token for the session kind.
func (s *streamServer) url(kind, token string) string {
	u := s.baseURL
	u.Path = "/" + kind + "/" + token
	return u.String()
}

func (s *streamServer) getExec(req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	token, err := s.tokens.insert(req)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ExecResponse{Url: s.url("exec", token)}, nil
}

func (s *streamServer) getAttach(req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	token, err := s.tokens.insert(req)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.AttachResponse{Url: s.url("attach", token)}, nil
}

func (s *streamServer) getPortForward(req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	token, err := s.tokens.insert(req)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PortForwardResponse{Url: s.url("portforward", token)}, nil
}

// begin registers a session and wraps w so that the hijacked connection
// is tracked and the returned request's context ends with it.
func (s *streamServer) begin(w http.ResponseWriter, req *http.Request) (http.ResponseWriter, *http.Request, func(), bool) {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		http.Error(w, "streaming server is stopping", http.StatusServiceUnavailable)
		return nil, nil, nil, false
	}
	s.sessions.Add(1)
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(req.Context())
	tw := &trackedWriter{ResponseWriter: w, server: s, cancel: cancel}
	return tw, req.WithContext(ctx), func() {
		cancel()
		tw.closeConn()
		s.sessions.Done()
	}, true
}

func (s *streamServer) serveExec(w http.ResponseWriter, req *http.Request) {
	r, ok := s.tokens.consume(req.PathValue("token")).(*runtimeapi.ExecRequest)
	if !ok {
		http.NotFound(w, req)
		return
	}
	w, req, end, ok := s.begin(w, req)
	if !ok {
		return
	}
	defer end()
	opts := &remotecommand.Options{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, TTY: r.Tty}
	run := func(ctx context.Context, in io.Reader, out, errOut io.WriteCloser, resize <-chan remotecommand.TerminalSize) error {
		return s.runtime.exec(ctx, r.ContainerId, r.Cmd, in, out, errOut, r.Tty, resize)
	}
	if wsstream.IsWebSocketRequest(req) {
		s.serveWebsocketCommand(w, req, opts, run)
		return
	}
	remotecommand.ServeExec(w, req, commandAdapter(run), "", "", r.ContainerId, r.Cmd, opts,
		s.idleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

func (s *streamServer) serveAttach(w http.ResponseWriter, req *http.Request) {
	r, ok := s.tokens.consume(req.PathValue("token")).(*runtimeapi.AttachRequest)
	if !ok {
		http.NotFound(w, req)
		return
	}
	w, req, end, ok := s.begin(w, req)
	if !ok {
		return
	}
	defer end()
	opts := &remotecommand.Options{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, TTY: r.Tty}
	run := func(ctx context.Context, in io.Reader, out, errOut io.WriteCloser, resize <-chan remotecommand.TerminalSize) error {
		return s.runtime.attach(ctx, r.ContainerId, in, out, errOut, r.Tty, resize)
	}
	if wsstream.IsWebSocketRequest(req) {
		s.serveWebsocketCommand(w, req, opts, run)
		return
	}
	remotecommand.ServeAttach(w, req, commandAdapter(run), "", "", r.ContainerId, opts,
		s.idleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

func (s *streamServer) servePortForward(w http.ResponseWriter, req *http.Request) {
	r, ok := s.tokens.consume(req.PathValue("token")).(*runtimeapi.PortForwardRequest)
	if !ok {
		http.NotFound(w, req)
		return
	}
	opts, err := portforward.BuildV4Options(r.Port)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w, req, end, ok := s.begin(w, req)
	if !ok {
		return
	}
	defer end()
	forwarder := portForwardAdapter(func(ctx context.Context, port int32, stream io.ReadWriteCloser) error {
		return s.runtime.portForward(ctx, r.PodSandboxId, port, stream)
	})
	if wsstream.IsWebSocketRequestWithTunnelingProtocol(req) {
		w, req = tunnelSPDYThroughWebsocket(w, req)
	}
	portforward.ServePortForward(w, req, forwarder, r.PodSandboxId, "", opts,
		s.idleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
}

// commandFunc runs one exec or attach session on the given streams.
type commandFunc func(ctx context.Context, in io.Reader, out, errOut io.WriteCloser, resize <-chan remotecommand.TerminalSize) error

// commandAdapter lets a commandFunc serve the library's SPDY handlers.
type commandAdapter commandFunc

func (f commandAdapter) ExecInContainer(ctx context.Context, _, _, _ string, _ []string, in io.Reader, out, errOut io.WriteCloser, _ bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	return f(ctx, in, out, errOut, resize)
}

func (f commandAdapter) AttachContainer(ctx context.Context, _, _, _ string, in io.Reader, out, errOut io.WriteCloser, _ bool, resize <-chan remotecommand.TerminalSize) error {
	return f(ctx, in, out, errOut, resize)
}

// portForwardAdapter lets a function serve the library's port-forward handler.
type portForwardAdapter func(ctx context.Context, port int32, stream io.ReadWriteCloser) error

func (f portForwardAdapter) PortForward(ctx context.Context, _, _ string, port int32, stream io.ReadWriteCloser) error {
	return f(ctx, port, stream)
}

// trackedWriter hands out a trackedConn when the handler hijacks the
// connection (every streaming protocol does).
type trackedWriter struct {
	http.ResponseWriter
	server *streamServer
	cancel context.CancelFunc
	mu     sync.Mutex
	conn   *trackedConn
}

func (w *trackedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("streaming: response cannot be hijacked")
	}
	raw, rw, err := h.Hijack()
	if err != nil {
		return nil, nil, err
	}
	conn := &trackedConn{Conn: raw, onClose: w.cancel, server: w.server}
	w.server.mu.Lock()
	w.server.conns[conn] = struct{}{}
	w.server.mu.Unlock()
	w.mu.Lock()
	w.conn = conn
	w.mu.Unlock()
	// Reads must go through conn so a dead client is noticed: hand out a
	// reader over conn that first returns what the server already buffered.
	var reader io.Reader = conn
	if n := rw.Reader.Buffered(); n > 0 {
		buffered, _ := rw.Reader.Peek(n)
		reader = io.MultiReader(bytes.NewReader(bytes.Clone(buffered)), conn)
	}
	return conn, bufio.NewReadWriter(bufio.NewReader(reader), rw.Writer), nil
}

// closeConn closes the hijacked connection, if any, when the session ends.
func (w *trackedWriter) closeConn() {
	w.mu.Lock()
	conn := w.conn
	w.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
}

// trackedConn is a hijacked streaming connection: a failed read (the
// client went away, or the idle timeout closed it) ends the session.
type trackedConn struct {
	net.Conn
	onClose   context.CancelFunc
	server    *streamServer
	closeOnce sync.Once
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.onClose()
	}
	return n, err
}

func (c *trackedConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.onClose()
		err = c.Conn.Close()
		c.server.mu.Lock()
		delete(c.server.conns, c)
		c.server.mu.Unlock()
	})
	return err
}

// Websocket exec and attach (remotecommand over wsstream channels).
const (
	wsStdin = iota
	wsStdout
	wsStderr
	wsError
	wsResize
)

const (
	v5ChannelProtocol       = "v5.channel.k8s.io"
	v4ChannelProtocol       = "v4.channel.k8s.io"
	v4Base64ChannelProtocol = "v4.base64.channel.k8s.io"
)

// serveWebsocketCommand runs an exec or attach session over a websocket,
// offering v5 (stdin half-close), v4 (JSON exit status) and the older
// channel protocols.
func (s *streamServer) serveWebsocketCommand(w http.ResponseWriter, req *http.Request, opts *remotecommand.Options, run commandFunc) {
	channel := func(use bool, t wsstream.ChannelType) wsstream.ChannelType {
		if use {
			return t
		}
		return wsstream.IgnoreChannel
	}
	channels := []wsstream.ChannelType{
		wsStdin:  channel(opts.Stdin, wsstream.ReadChannel),
		wsStdout: channel(opts.Stdout, wsstream.WriteChannel),
		wsStderr: channel(opts.Stderr && !opts.TTY, wsstream.WriteChannel),
		wsError:  wsstream.WriteChannel,
		wsResize: wsstream.ReadChannel,
	}
	binary := wsstream.ChannelProtocolConfig{Binary: true, Channels: channels}
	base64 := wsstream.ChannelProtocolConfig{Binary: false, Channels: channels}
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		"":                                      binary,
		wsstream.ChannelWebSocketProtocol:       binary,
		wsstream.Base64ChannelWebSocketProtocol: base64,
		v4ChannelProtocol:                       binary,
		v4Base64ChannelProtocol:                 base64,
		v5ChannelProtocol:                       binary,
	})
	conn.SetIdleTimeout(s.idleTimeout)
	protocol, streams, err := conn.Open(w, req)
	if err != nil {
		log.G(req.Context()).WithError(err).Debug("streaming: websocket upgrade failed")
		return
	}
	// An empty frame on the first writable channel tells the client the
	// session is up.
	switch {
	case opts.Stdout:
		_, _ = streams[wsStdout].Write(nil)
	case opts.Stderr && !opts.TTY:
		_, _ = streams[wsStderr].Write(nil)
	default:
		_, _ = streams[wsError].Write(nil)
	}
	var (
		in       io.Reader
		out, eo  io.WriteCloser
		resize   chan remotecommand.TerminalSize
		resizeWG sync.WaitGroup
	)
	if opts.Stdin {
		in = streams[wsStdin]
	}
	if opts.Stdout {
		out = streams[wsStdout]
	}
	if opts.Stderr && !opts.TTY {
		eo = streams[wsStderr]
	}
	ctx, cancel := context.WithCancel(req.Context())
	defer func() {
		cancel()
		_ = conn.Close() // ends the resize reader
		resizeWG.Wait()
	}()
	if opts.TTY {
		resize = make(chan remotecommand.TerminalSize)
		resizeWG.Add(1)
		go func() {
			defer resizeWG.Done()
			decodeResizes(ctx, streams[wsResize], resize)
		}()
	}
	runErr := run(ctx, in, out, eo, resize)
	status := commandStatus(runErr)
	if protocol == v4ChannelProtocol || protocol == v4Base64ChannelProtocol || protocol == v5ChannelProtocol {
		_, _ = streams[wsError].Write(status)
	} else if runErr != nil {
		_, _ = streams[wsError].Write([]byte(runErr.Error()))
	}
}

// tunnelSPDYThroughWebsocket turns a websocket request that tunnels SPDY
// (client-go's port-forward over websocket) into the SPDY upgrade request
// it carries, with a response writer whose hijacked connection is the
// websocket: the library's SPDY handler then runs unchanged on it.
func tunnelSPDYThroughWebsocket(w http.ResponseWriter, req *http.Request) (http.ResponseWriter, *http.Request) {
	const tunnelPrefix = "SPDY/3.1+"
	spdyReq := req.Clone(req.Context())
	spdyReq.Header.Del(httpstream.HeaderProtocolVersion)
	for _, p := range gwebsocket.Subprotocols(req) {
		if strings.HasPrefix(p, tunnelPrefix) {
			spdyReq.Header.Add(httpstream.HeaderProtocolVersion, strings.TrimPrefix(p, tunnelPrefix))
		}
	}
	spdyReq.Header.Set(httpstream.HeaderConnection, httpstream.HeaderUpgrade)
	spdyReq.Header.Set(httpstream.HeaderUpgrade, spdy.HeaderSpdy31)
	spdyReq.Method = http.MethodPost
	return &tunnelWriter{w: w, req: req, header: http.Header{}, prefix: tunnelPrefix}, spdyReq
}

// tunnelWriter collects the SPDY handler's 101 response instead of
// sending it, and answers Hijack with the upgraded websocket. Any other
// response (an error) goes to the client as is.
type tunnelWriter struct {
	w         http.ResponseWriter
	req       *http.Request
	header    http.Header
	prefix    string
	switching bool
	written   bool
}

func (t *tunnelWriter) Header() http.Header { return t.header }

func (t *tunnelWriter) WriteHeader(code int) {
	if code == http.StatusSwitchingProtocols {
		t.switching = true
		return
	}
	if t.written {
		return
	}
	t.written = true
	for k, v := range t.header {
		t.w.Header()[k] = v
	}
	t.w.WriteHeader(code)
}

func (t *tunnelWriter) Write(p []byte) (int, error) {
	if !t.written {
		t.WriteHeader(http.StatusOK)
	}
	return t.w.Write(p)
}

func (t *tunnelWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !t.switching || t.written {
		return nil, nil, errors.New("streaming: tunnel hijacked without an upgrade")
	}
	var protocols []string
	if p := t.header.Get(httpstream.HeaderProtocolVersion); p != "" {
		protocols = []string{t.prefix + p}
	}
	upgrader := gwebsocket.Upgrader{
		// Streaming URLs carry a single-use token; browsers' origin
		// checks do not apply to these clients.
		CheckOrigin:  func(*http.Request) bool { return true },
		Subprotocols: protocols,
	}
	ws, err := upgrader.Upgrade(t.w, t.req, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("upgrade tunnel websocket: %w", err)
	}
	conn := clientportforward.NewTunnelingConnection("kcrid-stream", ws)
	return conn, bufio.NewReadWriter(bufio.NewReader(conn), bufio.NewWriter(conn)), nil
}

// streamTokens caches requests under single-use random tokens.
type streamTokens struct {
	mu      sync.Mutex
	entries map[string]tokenEntry
}

type tokenEntry struct {
	req     any
	expires time.Time
}

func newStreamTokens() *streamTokens { return &streamTokens{entries: map[string]tokenEntry{}} }

func (t *streamTokens) insert(req any) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	for token, e := range t.entries {
		if now.After(e.expires) {
			delete(t.entries, token)
		}
	}
	if len(t.entries) >= maxStreamsInFlight {
		return "", fmt.Errorf("%d streaming requests are waiting to be used; retry later: %w", len(t.entries), errdefs.ErrResourceExhausted)
	}
	b := make([]byte, streamTokenRandBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("streaming token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(b)
	t.entries[token] = tokenEntry{req: req, expires: now.Add(streamTokenTTL)}
	return token, nil
}

// consume returns the request of token once, if it has not expired.
func (t *streamTokens) consume(token string) any {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[token]
	if !ok {
		return nil
	}
	delete(t.entries, token)
	if time.Now().After(e.expires) {
		return nil
	}
	return e.req
}
