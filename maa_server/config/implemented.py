"""The Dovecot settings maa-server honours (spec sections 1-2).

A setting Dovecot knows but that is not in this set is accepted and produces one
warning naming it. Other parts add the names they implement here."""

from __future__ import annotations

IMPLEMENTED: set[str] = {
    # core / daemon (spec 2.1)
    "protocols", "listen", "base_dir", "instance_name", "login_greeting", "shutdown_clients",
    "hostname", "import_environment", "state_dir", "libexec_dir", "version_ignore",
    "default_vsz_limit", "default_process_limit", "default_client_limit",
    "login_trusted_networks", "haproxy_trusted_networks", "haproxy_timeout",
    "verbose_proctitle", "default_internal_user", "default_login_user", "default_internal_group", "mail_server_comment", "mail_server_admin",
    # ssl (spec 2.2)
    "ssl", "ssl_cert", "ssl_key", "ssl_key_password", "ssl_ca", "ssl_min_protocol",
    "ssl_cipher_list", "ssl_cipher_suites", "ssl_prefer_server_ciphers", "ssl_dh",
    "ssl_verify_client_cert", "ssl_client_ca_dir", "ssl_client_ca_file", "ssl_curve_list",
    "ssl_options", "ssl_require_crl", "verbose_ssl", "ssl_cert_username_field",
    "ssl_alt_cert", "ssl_alt_key",
    # auth (spec 2.3)
    "disable_plaintext_auth", "auth_mechanisms", "auth_username_format", "auth_username_chars",
    "auth_username_translation", "auth_default_realm", "auth_realms", "auth_verbose",
    "auth_verbose_passwords", "auth_debug", "auth_debug_passwords", "auth_failure_delay",
    "auth_master_user_separator", "auth_anonymous_username", "auth_cache_size", "auth_cache_ttl",
    "auth_cache_negative_ttl", "auth_worker_max_count", "auth_ssl_require_client_cert",
    "auth_ssl_username_from_cert", "mail_max_userip_connections", "login_log_format",
    "login_log_format_elements", "auth_socket_path",
    # mail location / storage (spec 2.4, 2.5, 2.10)
    "mail_location", "mail_home", "mail_uid", "mail_gid", "first_valid_uid", "last_valid_uid",
    "first_valid_gid", "last_valid_gid", "mail_privileged_group", "mail_access_groups",
    "valid_chroot_dirs", "mail_chroot", "mail_plugins", "mail_fsync", "maildir_very_dirty_syncs",
    "maildir_empty_new", "maildir_copy_with_hardlinks", "maildir_stat_dirs",
    "maildir_broken_filename_sizes", "mail_save_crlf", "dotlock_use_excl", "mail_max_lock_timeout",
    "mail_temp_scan_interval", "mail_max_keyword_length", "mailbox_list_index_very_dirty_syncs",
    "mailbox_list_index", "mail_temp_dir", "lock_method", "mail_full_filesystem_access",
    # imap (spec 2.6)
    "imap_capability", "imap_idle_notify_interval", "imap_max_line_length", "imap_logout_format",
    "imap_id_send", "imap_id_log", "imap_client_workarounds", "imap_literal_minus",
    "imap_hibernate_timeout", "imap_fetch_failure", "imap_metadata", "mailbox_idle_check_interval",
    # pop3 (spec 2.7)
    "pop3_uidl_format", "pop3_save_uidl", "pop3_reuse_xuidl", "pop3_uidl_duplicates",
    "pop3_no_flag_updates", "pop3_lock_session", "pop3_enable_last", "pop3_fast_size_lookups",
    "pop3_deleted_flag", "pop3_delete_type", "pop3_logout_format", "pop3_client_workarounds",
    # lmtp / lda (spec 2.8)
    "lmtp_add_received_header", "lmtp_hdr_delivery_address", "lmtp_save_to_detail_mailbox",
    "lmtp_rcpt_check_quota", "lmtp_proxy", "lmtp_user_concurrency_limit", "lmtp_client_workarounds",
    "recipient_delimiter", "lda_mailbox_autocreate", "lda_mailbox_autosubscribe",
    "lda_original_recipient_header", "postmaster_address", "quota_full_tempfail",
    "deliver_log_format", "rejection_reason", "rejection_subject", "submission_host",
    "sendmail_path",
    # logging (spec 2.9)
    "log_path", "info_log_path", "debug_log_path", "syslog_facility", "log_timestamp",
    "log_debug", "log_core_filter", "mail_log_prefix", "mail_debug",
    # managesieve
    "managesieve_max_line_length", "managesieve_implementation_string",
    "managesieve_sieve_capability", "managesieve_notify_capability",
    "managesieve_logout_format", "managesieve_max_compile_errors",
}
