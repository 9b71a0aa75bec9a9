// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title VoucherCheck: the on-chain half of an Atlas voucher, for tests
/// @notice Recomputes the EIP-712 (TIP-712) digest of an Atlas voucher exactly as
/// `requester/protocol/voucher.py` and `requester/protocol/payment_domain.py`
/// define it (docs/protocol.md section 6.1) and recovers the signer with
/// `ecrecover`, refusing high-s and malformed signatures.
///
/// The domain's `chainId` and `verifyingContract` are call arguments rather than
/// `block.chainid` and `address(this)`, so one deployment checks vouchers of any
/// domain (the embedded ledger's stand-in contract, TRON mainnet, ...). A real
/// channel ledger computes the same separator once, in its constructor, from
/// `block.chainid` and `address(this)`. Everything here is `pure`: no storage.
contract VoucherCheck {
    struct Voucher {
        bytes32 channelId;
        address payer;
        address payee;
        bytes32 asset; // keccak256 of the asset URI, e.g. "tron:trc20:TAFjULxiVgT4qWk6UZwjqwZXTSaGaqnVp4"
        uint256 amount; // cumulative, in the asset's base units
    }

    bytes32 public constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 public constant VOUCHER_TYPEHASH =
        keccak256("Voucher(bytes32 channelId,address payer,address payee,bytes32 asset,uint256 amount)");
    bytes32 public constant NAME_HASH = keccak256("Atlas");
    bytes32 public constant VERSION_HASH = keccak256("1");

    /// @dev secp256k1 group order n divided by two: the largest s accepted.
    uint256 private constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    error BadSignatureLength(uint256 length);
    error HighOrZeroS();
    error BadV(uint8 v);
    error Unrecoverable();

    function domainSeparator(uint256 chainId, address verifyingContract) public pure returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chainId, verifyingContract));
    }

    function structHash(Voucher calldata voucher) public pure returns (bytes32) {
        return keccak256(
            abi.encode(
                VOUCHER_TYPEHASH, voucher.channelId, voucher.payer, voucher.payee, voucher.asset, voucher.amount
            )
        );
    }

    /// @notice keccak256(0x19 0x01 || domainSeparator || structHash): what the payer signs.
    function voucherDigest(uint256 chainId, address verifyingContract, Voucher calldata voucher)
        public
        pure
        returns (bytes32)
    {
        return keccak256(
            abi.encodePacked(hex"1901", domainSeparator(chainId, verifyingContract), structHash(voucher))
        );
    }

    /// @notice The signer of `digest`; reverts unless `signature` is 65 bytes r || s || v
    /// with 0 < s <= n/2 and v in {27, 28}, and recovers a key.
    function recoverDigest(bytes32 digest, bytes calldata signature) public pure returns (address signer) {
        if (signature.length != 65) revert BadSignatureLength(signature.length);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (uint256(s) == 0 || uint256(s) > HALF_N) revert HighOrZeroS();
        if (v != 27 && v != 28) revert BadV(v);
        signer = ecrecover(digest, v, r, s);
        if (signer == address(0)) revert Unrecoverable();
    }

    /// @notice The address whose key signed `voucher` in the domain (chainId, verifyingContract).
    function recoverSigner(
        uint256 chainId,
        address verifyingContract,
        Voucher calldata voucher,
        bytes calldata signature
    ) public pure returns (address) {
        return recoverDigest(voucherDigest(chainId, verifyingContract, voucher), signature);
    }

    /// @notice True if the voucher is signed by its own payer (what a ledger requires to pay out).
    /// Reverts like `recoverDigest` on a malformed or high-s signature.
    function isSignedByPayer(
        uint256 chainId,
        address verifyingContract,
        Voucher calldata voucher,
        bytes calldata signature
    ) external pure returns (bool) {
        return recoverSigner(chainId, verifyingContract, voucher, signature) == voucher.payer;
    }
}
