// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @dev The calls the channel contract makes on its TRC-20 token (encoded only: return
/// values are checked by hand, since TRON tokens that return nothing exist).
interface ITRC20 {
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
    function balanceOf(address owner) external view returns (uint256);
    function allowance(address owner, address spender) external view returns (uint256);
}

/// @title AtlasChannels: one-way payment channels in one TRC-20 token, paid with Atlas vouchers
/// @notice A payer locks a deposit for one payee until an expiry. The payee (or anyone for
/// it) redeems the payer's highest cumulative voucher (docs/protocol.md section 6) before
/// the expiry; the payer takes back what was not redeemed after it. Vouchers are checked
/// exactly as `requester/protocol/voucher.py` signs them: an EIP-712 (TIP-712) digest
/// over the domain ("Atlas", "1", block.chainid & 0xffffffff, this contract), with the
/// channel's payer, payee and asset read from storage, never from calldata.
/// No owner, no upgrade, no fee: the contract holds exactly the sum of
/// (deposit - redeemed) of its open channels.
/// @dev Refusals are custom errors named after the refusal codes of docs/ledger.md; the
/// mapping is in README.md. Every mutator holds a reentrancy lock and changes storage
/// before it calls the token.
contract AtlasChannels {
    /// @dev Three storage slots: (payer, expiresAt), (payee, openedAt, status), (deposit, redeemed).
    struct Channel {
        address payer;
        uint64 expiresAt;
        address payee;
        uint64 openedAt;
        uint8 status;
        uint128 deposit;
        uint128 redeemed;
    }

    uint8 private constant NONE = 0;
    uint8 private constant OPEN = 1;
    uint8 private constant RECLAIMED = 2;
    /// @dev The furthest expiry open and topUpTo accept, from now (and the longest close grace).
    uint64 private constant MAX_TERM = 365 days;
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant VOUCHER_TYPEHASH =
        keccak256("Voucher(bytes32 channelId,address payer,address payee,bytes32 asset,uint256 amount)");
    bytes32 private constant CHANNEL_ID_TAG = keccak256("atlas.channel-id.v1");
    /// @dev secp256k1 group order n divided by two: the largest s accepted.
    uint256 private constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;
    uint256 private constant CALL_OK = 0;
    uint256 private constant CALL_FAILED = 1; // reverted or returned false
    uint256 private constant CALL_MALFORMED = 2; // returned something other than nothing or true

    address public immutable token;
    /// @notice keccak256 of the asset URI (`requester.protocol.asset_id`), e.g. of
    /// "tron:trc20:TAFjULxiVgT4qWk6UZwjqwZXTSaGaqnVp4".
    bytes32 public immutable assetId;
    /// @notice block.chainid & 0xffffffff, as TIP-712 and the vouchers use it.
    uint256 public immutable chainId;
    bytes32 public immutable domainSeparator;
    /// @notice How long a payee keeps redeeming after the payer's requestClose, in seconds.
    uint64 public immutable closeGrace;

    mapping(bytes32 => Channel) private _channels;
    uint256 private _lock = 1;

    event ChannelOpened(
        bytes32 indexed id, address indexed payer, address indexed payee, uint128 deposit, uint64 expiresAt, bytes32 salt
    );
    event ChannelToppedUp(
        bytes32 indexed id, address indexed payer, address indexed payee, uint128 deposit, uint64 expiresAt, uint128 added
    );
    event Redeemed(bytes32 indexed id, address indexed payer, address indexed payee, uint128 amount, uint128 paid);
    event CloseRequested(bytes32 indexed id, address indexed payer, address indexed payee, uint64 expiresAt);
    event Reclaimed(bytes32 indexed id, address indexed payer, address indexed payee, uint128 returned);

    error BadRequest(uint64 value, uint64 min, uint64 max);
    error MalformedMessage(string reason);
    error BadSignatureLength(uint256 length);
    error HighOrZeroS();
    error BadV(uint8 v);
    error InvalidSignature(address signer);
    error WrongBinding(address payer);
    error InsufficientFunds(uint256 balance, uint256 allowance, uint256 needed);
    error NotFound(bytes32 id);
    error ChannelExists(bytes32 id);
    error ChannelExpired(bytes32 id, uint64 expiresAt);
    error DepositExceeded(uint128 amount, uint128 deposit);
    error AlreadyRedeemed(uint128 redeemed);
    error NotExpired(uint64 expiresAt);
    error AlreadyReclaimed(bytes32 id);
    error TokenRefused();
    error FeeOnTransfer(uint256 received, uint256 expected);
    error Reentrancy();

    modifier locked() {
        if (_lock != 1) revert Reentrancy();
        _lock = 2;
        _;
        _lock = 1;
    }

    constructor(address token_, bytes32 assetId_, uint64 closeGrace_) {
        if (token_.code.length == 0) revert TokenRefused();
        if (closeGrace_ == 0 || closeGrace_ > MAX_TERM) revert BadRequest(closeGrace_, 1, MAX_TERM);
        uint256 masked = block.chainid & 0xffffffff;
        token = token_;
        assetId = assetId_;
        closeGrace = closeGrace_;
        chainId = masked;
        domainSeparator =
            keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256("Atlas"), keccak256("1"), masked, address(this)));
    }

    /// @notice The id `payer` gets for a channel to `payee` with `salt` (what open returns).
    function channelIdOf(address payer, address payee, bytes32 salt) public view returns (bytes32) {
        return keccak256(abi.encode(CHANNEL_ID_TAG, chainId, address(this), payer, payee, assetId, salt));
    }

    /// @notice A channel; status 0 = none, 1 = open, 2 = reclaimed.
    function channels(bytes32 id)
        external
        view
        returns (
            address payer,
            uint64 expiresAt,
            address payee,
            uint64 openedAt,
            uint128 deposit,
            uint128 redeemed,
            uint8 status
        )
    {
        Channel storage c = _channels[id];
        return (c.payer, c.expiresAt, c.payee, c.openedAt, c.deposit, c.redeemed, c.status);
    }

    /// @notice The digest the payer signs for a voucher of `amount` on channel `id`.
    function voucherDigest(bytes32 id, uint128 amount) external view returns (bytes32) {
        Channel storage c = _channels[id];
        if (c.status == NONE) revert NotFound(id);
        return _digest(id, c.payer, c.payee, amount);
    }

    /// @notice Lock `deposit` (pulled from the caller, who must have approved it) for `payee`
    /// until `expiresAt`. The same salt twice reverts ChannelExists, so a retry opens nothing.
    function open(address payee, uint128 deposit, uint64 expiresAt, bytes32 salt)
        external
        locked
        returns (bytes32 id)
    {
        if (deposit == 0) revert MalformedMessage("zero deposit");
        if (payee == address(0)) revert MalformedMessage("zero payee");
        if (payee == msg.sender) revert MalformedMessage("payee is the payer");
        _checkExpiry(expiresAt, uint64(block.timestamp) + 1);
        id = channelIdOf(msg.sender, payee, salt);
        Channel storage c = _channels[id];
        if (c.status != NONE) revert ChannelExists(id);
        c.payer = msg.sender;
        c.expiresAt = expiresAt;
        c.payee = payee;
        c.openedAt = uint64(block.timestamp);
        c.status = OPEN;
        c.deposit = deposit;
        emit ChannelOpened(id, msg.sender, payee, deposit, expiresAt, salt);
        _pull(msg.sender, deposit);
    }

    /// @notice Raise the deposit TO `newDeposit` (pulling the difference) and the expiry to
    /// `newExpiresAt`. A target, not an increment: sent twice, it charges once.
    function topUpTo(bytes32 id, uint128 newDeposit, uint64 newExpiresAt) external locked {
        Channel storage c = _channels[id];
        (address payer, uint64 expiresAt) = _payerOnly(id, c);
        if (c.status != OPEN || block.timestamp >= expiresAt) revert ChannelExpired(id, expiresAt);
        _checkExpiry(newExpiresAt, expiresAt);
        uint128 deposit = c.deposit;
        if (newDeposit < deposit) revert MalformedMessage("new deposit below the deposit");
        c.deposit = newDeposit;
        c.expiresAt = newExpiresAt;
        emit ChannelToppedUp(id, payer, c.payee, newDeposit, newExpiresAt, newDeposit - deposit);
        if (newDeposit != deposit) _pull(payer, newDeposit - deposit);
    }

    /// @notice Pay the payee what the payer's voucher of cumulative `amount` adds to what was
    /// redeemed. Anyone may call: the money only goes to the channel's payee.
    function redeem(bytes32 id, uint128 amount, bytes calldata signature) external locked {
        Channel storage c = _channels[id];
        address payer = c.payer;
        uint64 expiresAt = c.expiresAt;
        address payee = c.payee;
        uint8 status = c.status;
        if (status == NONE) revert NotFound(id);
        _checkSigner(_digest(id, payer, payee, amount), signature, payer);
        if (status != OPEN || block.timestamp >= expiresAt) revert ChannelExpired(id, expiresAt);
        uint128 deposit = c.deposit;
        uint128 redeemed = c.redeemed;
        if (amount > deposit) revert DepositExceeded(amount, deposit);
        if (amount <= redeemed) revert AlreadyRedeemed(redeemed);
        c.redeemed = amount;
        emit Redeemed(id, payer, payee, amount, amount - redeemed);
        _push(payee, amount - redeemed);
    }

    /// @notice The payer announces the end: the expiry becomes min(expiry, now + closeGrace),
    /// so the payee still has closeGrace seconds to redeem.
    function requestClose(bytes32 id) external locked {
        Channel storage c = _channels[id];
        (address payer, uint64 expiresAt) = _payerOnly(id, c);
        if (c.status != OPEN || block.timestamp >= expiresAt) revert ChannelExpired(id, expiresAt);
        uint64 closeAt = uint64(block.timestamp) + closeGrace;
        if (closeAt < expiresAt) {
            c.expiresAt = closeAt;
            expiresAt = closeAt;
        }
        emit CloseRequested(id, payer, c.payee, expiresAt);
    }

    /// @notice After the expiry, send deposit - redeemed back to the payer (payer only).
    function reclaim(bytes32 id) external locked {
        Channel storage c = _channels[id];
        (address payer, uint64 expiresAt) = _payerOnly(id, c);
        if (c.status == RECLAIMED) revert AlreadyReclaimed(id);
        if (block.timestamp < expiresAt) revert NotExpired(expiresAt);
        c.status = RECLAIMED;
        uint128 returned = c.deposit - c.redeemed;
        emit Reclaimed(id, payer, c.payee, returned);
        if (returned != 0) _push(payer, returned);
    }

    /// @dev The channel's payer and expiry; reverts unless the channel exists and the caller is its payer.
    function _payerOnly(bytes32 id, Channel storage c) private view returns (address payer, uint64 expiresAt) {
        payer = c.payer;
        expiresAt = c.expiresAt;
        if (payer == address(0)) revert NotFound(id);
        if (msg.sender != payer) revert WrongBinding(payer);
    }

    function _checkExpiry(uint64 expiresAt, uint64 min) private view {
        uint64 max = uint64(block.timestamp) + MAX_TERM;
        if (expiresAt < min || expiresAt > max) revert BadRequest(expiresAt, min, max);
    }

    /// @dev keccak256(0x1901 || domainSeparator || structHash(Voucher)), as voucher.py computes it.
    function _digest(bytes32 id, address payer, address payee, uint128 amount) private view returns (bytes32) {
        bytes32 structHash = keccak256(abi.encode(VOUCHER_TYPEHASH, id, payer, payee, assetId, uint256(amount)));
        return keccak256(abi.encodePacked(hex"1901", domainSeparator, structHash));
    }

    /// @dev 65 bytes r || s || v, 0 < s <= n/2, v in {27, 28}, recovering to `payer`.
    function _checkSigner(bytes32 digest, bytes calldata signature, address payer) private pure {
        if (signature.length != 65) revert BadSignatureLength(signature.length);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (uint256(s) == 0 || uint256(s) > HALF_N) revert HighOrZeroS();
        if (v != 27 && v != 28) revert BadV(v);
        address signer = ecrecover(digest, v, r, s);
        if (signer != payer) revert InvalidSignature(signer);
    }

    /// @dev Take `amount` from `from`; the contract's balance must grow by exactly `amount`.
    function _pull(address from, uint128 amount) private {
        uint256 before = _balanceOf(address(this));
        uint256 result = _tokenCall(abi.encodeCall(ITRC20.transferFrom, (from, address(this), amount)));
        if (result == CALL_FAILED) {
            (, uint256 balance) = _read(abi.encodeCall(ITRC20.balanceOf, (from)));
            (, uint256 allowed) = _read(abi.encodeCall(ITRC20.allowance, (from, address(this))));
            revert InsufficientFunds(balance, allowed, amount);
        }
        if (result != CALL_OK) revert TokenRefused();
        uint256 received = _balanceOf(address(this));
        received = received > before ? received - before : 0;
        if (received != amount) revert FeeOnTransfer(received, amount);
    }

    /// @dev Send `amount` to `to`; any failure reverts the whole call.
    function _push(address to, uint128 amount) private {
        if (_tokenCall(abi.encodeCall(ITRC20.transfer, (to, amount))) != CALL_OK) revert TokenRefused();
    }

    function _balanceOf(address owner) private view returns (uint256 balance) {
        bool ok;
        (ok, balance) = _read(abi.encodeCall(ITRC20.balanceOf, (owner)));
        if (!ok) revert TokenRefused();
    }

    /// @dev A view call on the token that returns one word.
    function _read(bytes memory data) private view returns (bool ok, uint256 value) {
        address t = token;
        assembly ("memory-safe") {
            ok := staticcall(gas(), t, add(data, 0x20), mload(data), 0, 0x20)
            ok := and(ok, eq(returndatasize(), 0x20)) // a separate step: Yul evaluates right to left
            value := mul(ok, mload(0))
        }
    }

    /// @dev Call the token: CALL_OK on success with no return data or an abi-encoded true,
    /// CALL_FAILED on a revert or false, CALL_MALFORMED on any other answer.
    function _tokenCall(bytes memory data) private returns (uint256 result) {
        address t = token;
        assembly ("memory-safe") {
            switch call(gas(), t, 0, add(data, 0x20), mload(data), 0, 0x20)
            case 0 { result := CALL_FAILED }
            default {
                switch returndatasize()
                case 0 { result := CALL_OK }
                case 0x20 {
                    switch mload(0)
                    case 1 { result := CALL_OK }
                    case 0 { result := CALL_FAILED }
                    default { result := CALL_MALFORMED }
                }
                default { result := CALL_MALFORMED }
            }
        }
    }
}
